import { afterEach, describe, expect, it } from "vitest";
import { createGateway, createKey, type Gateway } from "../src/index.js";
import { POLICY, sqliteDatabase, startGateway } from "./harness.js";

let current: { gateway: Gateway } | undefined;
afterEach(async () => {
  await current?.gateway.close();
  current = undefined;
});

/** Ids and times differ between two otherwise identical decisions. */
function comparable(body: unknown): unknown {
  return JSON.parse(
    JSON.stringify(body, (key, value) =>
      ["auditEventId", "approvalId", "expiresAt", "timeoutAt", "timestamp"].includes(key)
        ? "<varies>"
        : value,
    ),
  );
}

describe("POST /v1/actions fast path", () => {
  it("answers ordinary decision requests outside Fastify's pipeline, exactly as Fastify's route does", async () => {
    const gateway = await createGateway({ policy: POLICY, database: sqliteDatabase(), keyCacheMs: 0 });
    current = { gateway };
    const throughFastify: string[] = [];
    gateway.app.addHook("onRequest", async (request) => {
      throughFastify.push(`${request.method} ${request.url}`);
    });
    const key = async (kind: "agent" | "operator", agentId?: string) =>
      (await createKey(gateway.store, { kind, orgId: "acme", ...(agentId ? { agentId } : {}) })).key;
    const url = await gateway.listen({ port: 0 });
    const gw = {
      keys: { agent: await key("agent", "release-bot"), operator: await key("operator") },
      async call(key: string | undefined, method: string, path: string, body?: string, headers = {}) {
        const response = await fetch(url + path, {
          method,
          headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers },
          ...(body !== undefined ? { body } : {}),
        });
        return { status: response.status, body: await response.json(), headers: response.headers };
      },
    };
    const requests: { key: string | undefined; body: string }[] = [
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "pr.open", metadata: { pr_size: 10 } }) },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "pr.open", metadata: { pr_size: 120 } }) },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "pr.merge", toolName: "merge" }) },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "read.x", dryRun: true }) },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "read.x", enforcementMode: "observe" }) },
      { key: gw.keys.agent, body: '{"actionType": ' },
      { key: gw.keys.agent, body: '{"actionType": "read.x", "__proto__": {"polluted": true}}' },
      { key: gw.keys.agent, body: '{"actionType": "read.x", "constructor": {"prototype": {}}}' },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "read.x", dryRun: "yes" }) },
      { key: gw.keys.agent, body: JSON.stringify({ actionType: "read.x", agent: { id: "admin" } }) },
      { key: gw.keys.agent, body: JSON.stringify({ toolName: "no action type" }) },
      { key: gw.keys.agent, body: "[1, 2]" },
      { key: undefined, body: JSON.stringify({ actionType: "read.x" }) },
      { key: `${gw.keys.agent.slice(0, -1)}0`, body: JSON.stringify({ actionType: "read.x" }) },
      { key: gw.keys.operator, body: JSON.stringify({ actionType: "read.x" }) },
    ];
    const send = (key: string | undefined, body: string, contentType: string) =>
      gw.call(key, "POST", "/v1/actions", body, { "content-type": contentType });
    const records = async () =>
      (await gw.call(gw.keys.operator, "GET", "/v1/audit?limit=1000")).body.items.length as number;
    let recorded = 0;
    for (const { key, body } of requests) {
      const before = await records();
      const fast = await send(key, body, "application/json");
      const afterFast = await records();
      // A content type the fast path leaves alone: Fastify's own route answers it.
      const routed = await send(key, body, "application/json; charset=UTF-8");
      // Both paths write the same records (one decision, its approval, or nothing when refused).
      expect((await records()) - afterFast, body).toBe(afterFast - before);
      recorded += afterFast - before;
      expect(fast.status, body).toBe(routed.status);
      expect(comparable(fast.body), body).toEqual(comparable(routed.body));
      expect(fast.headers.get("content-type")).toBe(routed.headers.get("content-type"));
      expect(fast.headers.get("retry-after")).toBe(routed.headers.get("retry-after"));
    }
    expect(recorded).toBeGreaterThanOrEqual(3);
    // Only the second decision request of each pair went through Fastify.
    expect(throughFastify.filter((r) => r === "POST /v1/actions")).toHaveLength(requests.length);
  });

  it("leaves chunked, empty, oversize and non-JSON requests to Fastify (same errors as before)", async () => {
    const gw = await startGateway({ bodyLimit: 4096 });
    current = gw;
    const big = await gw.call(gw.keys.agent, "POST", "/v1/actions", {
      actionType: "read.x",
      args: "x".repeat(5000),
    });
    expect([big.status, big.body.error.code]).toEqual([413, "PAYLOAD_TOO_LARGE"]);
    const empty = await gw.call(gw.keys.agent, "POST", "/v1/actions", "", {
      "content-type": "application/json",
    });
    expect([empty.status, empty.body.error.code]).toEqual([400, "INVALID_BODY"]);
    // A streamed body (no content-length) is read by Fastify and decided by the same handler.
    const chunked = await fetch(`${gw.url}/v1/actions`, {
      method: "POST",
      headers: { authorization: `Bearer ${gw.keys.agent}`, "content-type": "application/json" },
      body: new Blob([JSON.stringify({ actionType: "pr.open", metadata: { pr_size: 10 } })]).stream(),
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(200);
    expect(await chunked.json()).toMatchObject({ status: "executed", policyName: "small-prs" });
  });
});
