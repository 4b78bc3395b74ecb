import { join } from "node:path";
import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import { PolicyRequest, REQUEST_SCHEMAS } from "../src/schemas.js";
import { contractDir, contractProblems, deref, openapi } from "./contract.js";
import { matchValue } from "./replay.js";

describe("the OpenAPI file", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const validator = new Validator();
    const result = await validator.validate(join(contractDir, "openapi.yaml"));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe("3.1");
  });

  it("describes every route the gateway serves", async () => {
    const { createGateway } = await import("../src/index.js");
    const gateway = await createGateway({
      policy: { version: 1, default: "deny", policies: [] },
      database: ":memory:",
    });
    try {
      await gateway.app.ready();
      for (const [template, operations] of Object.entries(openapi.paths as Record<string, object>)) {
        for (const method of Object.keys(operations).filter((k) => k !== "parameters")) {
          const path = `/v1${template.replace(/\{(\w+)\}/g, ":$1")}`;
          expect(
            gateway.app.hasRoute({ method: method.toUpperCase() as "GET", url: path }),
            `${method} ${path}`,
          ).toBe(true);
        }
      }
    } finally {
      await gateway.close();
    }
  });
});

describe("the gateway's request schemas are the OpenAPI file's", () => {
  const named = [
    "ActionRequest",
    "ApproveRequest",
    "DenyRequest",
    "ReasonRequest",
    "OutcomeRequest",
    "CreateKeyRequest",
    "DelegateRequest",
  ] as const;
  for (const name of named) {
    it(`${name} is the same schema on both sides`, () => {
      expect(deref(openapi.components.schemas[name])).toEqual(REQUEST_SCHEMAS[name]);
    });
  }
  it("PUT /policies takes the same body", () => {
    expect(deref(openapi.paths["/policies"].put.requestBody.content["application/json"].schema)).toEqual(
      PolicyRequest,
    );
  });
});

describe("response validation against the OpenAPI file", () => {
  it("accepts a conforming ActionResult and names what is wrong in another", () => {
    const ok = { status: "executed", auditEventId: "x", conditionsEvaluated: [] };
    expect(contractProblems("POST", "/v1/actions", 200, ok)).toEqual([]);
    const problems = contractProblems("POST", "/v1/actions", 200, { ...ok, status: "maybe", extra: 1 });
    expect(problems.join("\n")).toMatch(/status/);
    expect(problems.join("\n")).toMatch(/additional/);
  });
  it("requires the error shape for errors and a described status", () => {
    expect(
      contractProblems("GET", "/v1/whoami", 401, { error: { code: "UNAUTHENTICATED", message: "m" } }),
    ).toEqual([]);
    expect(contractProblems("GET", "/v1/whoami", 401, { message: "m" })).not.toEqual([]);
    expect(contractProblems("GET", "/v1/health", 418, {})).toEqual([
      "GET /health does not describe status 418",
    ]);
  });
});

describe("placeholder matching (the fixture README's rules)", () => {
  it("binds a name on first use and requires the same value later", () => {
    const bound = new Map<string, unknown>();
    expect(matchValue({ id: "<approval1>" }, { id: "apr_a" }, bound, "r")).toEqual([]);
    expect(bound.get("approval1")).toBe("apr_a");
    expect(matchValue("<approval1>", "apr_b", bound, "r")).toHaveLength(1);
  });
  it("matches placeholders inside text and never binds <time> or <any>", () => {
    const bound = new Map<string, unknown>([["approval1", "apr_a"]]);
    expect(
      matchValue(
        "Approval <approval1> expires <time>",
        "Approval apr_a expires 2026-01-01T00:00:00Z",
        bound,
        "r",
      ),
    ).toEqual([]);
    expect(matchValue("Approval <approval1> expires", "Approval apr_b expires", bound, "r")).toHaveLength(1);
    expect(matchValue(["<time>", "<time>"], ["a", "b"], bound, "r")).toEqual([]);
    expect(bound.has("time")).toBe(false);
  });
  it("reports missing, unexpected and different fields", () => {
    const problems = matchValue({ a: 1, b: 2 }, { a: 1, c: 3 }, new Map(), "r");
    expect(problems).toEqual(["r.b: undefined instead of 2", "r.c: unexpected field (3)"]);
  });
});
