import { EngineError } from "@aa/engine";
import { describe, expect, it } from "vitest";
import { GatewayError, toWireError } from "../src/errors.js";
import { contractProblems } from "./contract.js";

describe("errors on the wire", () => {
  it("store failures become a retryable 503 GATE_UNAVAILABLE naming the engine's code", () => {
    for (const code of ["STORE_UNAVAILABLE", "STORE_WRITE_FAILED", "ENGINE_CLOSED"] as const) {
      const wire = toWireError(new EngineError(code, 503, "the store is down", { driverCode: "57P01" }));
      expect(wire).toEqual({
        status: 503,
        body: {
          error: {
            code: "GATE_UNAVAILABLE",
            message: "the store is down",
            details: { driverCode: "57P01", engineCode: code },
          },
        },
      });
      expect(contractProblems("POST", "/v1/actions", wire.status, wire.body)).toEqual([]);
    }
  });

  it("other engine errors keep their code and status; REPORT_FAILED stays itself", () => {
    expect(toWireError(new EngineError("REPORT_FAILED", 503, "retry", {})).body.error.code).toBe(
      "REPORT_FAILED",
    );
    expect(
      toWireError(new EngineError("APPROVAL_NOT_PENDING", 409, "already approved", { approvalId: "a" })),
    ).toEqual({
      status: 409,
      body: {
        error: { code: "APPROVAL_NOT_PENDING", message: "already approved", details: { approvalId: "a" } },
      },
    });
  });

  it("anything unexpected is a 500 INTERNAL that leaks no internals", () => {
    const wire = toWireError(new TypeError("cannot read properties of undefined (reading 'secret')"));
    expect(wire.status).toBe(500);
    expect(wire.body.error.code).toBe("INTERNAL");
    expect(JSON.stringify(wire.body)).not.toContain("secret");
  });

  it("a gateway error is answered as thrown", () => {
    expect(toWireError(new GatewayError("KEY_NOT_FOUND", 404, "No API key k"))).toEqual({
      status: 404,
      body: { error: { code: "KEY_NOT_FOUND", message: "No API key k" } },
    });
  });
});
