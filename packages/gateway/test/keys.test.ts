import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import { startGateway, type TestGateway } from "./harness.js";

let current: TestGateway | undefined;
afterEach(async () => {
  await current?.gateway.close();
  current = undefined;
});
async function gateway(options?: Parameters<typeof startGateway>[0]): Promise<TestGateway> {
  current = await startGateway(options);
  return current;
}

describe("API keys", () => {
  it("are stored as a SHA-256 of the secret only, never the key", async () => {
    const gw = await gateway();
    const database = gw.gateway.database;
    if (database.kind !== "sqlite") throw new Error("the harness uses SQLite");
    const db = new DatabaseSync(database.path, { readOnly: true });
    try {
      const rows = db.prepare("SELECT * FROM aa_gateway_api_keys").all() as Record<string, unknown>[];
      const dump = JSON.stringify(rows);
      for (const key of Object.values(gw.keys)) {
        const secret = key.split("_")[3]!;
        expect(dump).not.toContain(secret);
      }
      expect(rows.every((row) => /^[0-9a-f]{64}$/.test(String(row.secret_hash)))).toBe(true);
    } finally {
      db.close();
    }
  });

  it("a key revoked through this gateway is refused at once, whatever the key cache time", async () => {
    const gw = await gateway({ keyCacheMs: 600_000 });
    const created = await gw.call(gw.keys.admin, "POST", "/v1/keys", {
      kind: "agent",
      agentId: "short-lived",
    });
    expect(created.status).toBe(201);
    expect((await gw.call(created.body.key, "GET", "/v1/whoami")).body).toMatchObject({
      agentId: "short-lived",
    });
    expect((await gw.call(gw.keys.admin, "DELETE", `/v1/keys/${created.body.id}`)).status).toBe(200);
    const refused = await gw.call(created.body.key, "GET", "/v1/whoami");
    expect(refused.status).toBe(401);
    expect(refused.body.error.message).toMatch(/was revoked at/);
  });

  it("a key of the right shape with a wrong secret, or another kind's prefix, is refused", async () => {
    const gw = await gateway();
    const [, kind, id, secret] = gw.keys.agent.split("_") as [string, string, string, string];
    const wrongSecret = `aa_${kind}_${id}_${secret.replace(/^./, (c) => (c === "0" ? "1" : "0"))}`;
    expect((await gw.call(wrongSecret, "GET", "/v1/whoami")).status).toBe(401);
    // The same id and secret presented as an operator key do not become an operator.
    expect((await gw.call(`aa_operator_${id}_${secret}`, "GET", "/v1/whoami")).status).toBe(401);
  });

  it("with the key cache on, a remembered key does not make a wrong secret or another kind's prefix pass", async () => {
    const gw = await gateway({ keyCacheMs: 600_000 });
    expect((await gw.call(gw.keys.agent, "GET", "/v1/whoami")).status).toBe(200);
    expect((await gw.call(gw.keys.agent, "GET", "/v1/whoami")).body).toMatchObject({
      agentId: "release-bot",
    });
    const [, kind, id, secret] = gw.keys.agent.split("_") as [string, string, string, string];
    const wrongSecret = `aa_${kind}_${id}_${secret.replace(/^./, (c) => (c === "0" ? "1" : "0"))}`;
    expect((await gw.call(wrongSecret, "GET", "/v1/whoami")).status).toBe(401);
    expect((await gw.call(`aa_operator_${id}_${secret}`, "GET", "/v1/whoami")).status).toBe(401);
    expect((await gw.call(gw.keys.agent, "GET", "/v1/whoami")).status).toBe(200);
  });
});
