/**
 * Two tenants (orgs) on one gateway, over loopback HTTP: the same agent id and the same user id in
 * each, yet principals, rate limits and audit stay apart (an operator key of one tenant reads only
 * its tenant's chain). On SQLite and PostgreSQL.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createGateway, createKey } from "../src/index.js";
import { pgSchemas } from "./pg.js";

const dir = mkdtempSync(join(tmpdir(), "aa-gateway-tenants-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pgUrl = pgSchemas();

const policy = {
  version: 1 as const,
  default: "deny" as const,
  policies: [
    { name: "refunds", action: "refund", effect: "allow" as const, required_scopes: ["payments:refund"] },
  ],
  redact: [],
  rate_limits: { user: { limit: 2, window: "1h" } },
};

describe.each([
  ["SQLite", () => `sqlite:${join(dir, `tenants-${Math.random()}.db`)}`],
  ["PostgreSQL", () => pgUrl()],
])("two tenants on one gateway (%s)", (_name, database) => {
  it("isolates principals, rate limits and audit per tenant", async () => {
    const gateway = await createGateway({ policy, database: database(), keyCacheMs: 0 });
    try {
      const keys = {
        acme: await createKey(gateway.store, { kind: "agent", orgId: "acme", agentId: "support-bot" }),
        globex: await createKey(gateway.store, { kind: "agent", orgId: "globex", agentId: "support-bot" }),
        acmeOps: await createKey(gateway.store, { kind: "operator", orgId: "acme", name: "ops" }),
      };
      const base = await gateway.listen({ port: 0 });
      const call = async (key: string, method: string, path: string, body?: unknown) => {
        const response = await fetch(base + path, {
          method,
          headers: {
            authorization: `Bearer ${key}`,
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown> };
      };
      const refund = (key: string, principal?: unknown) =>
        call(key, "POST", "/v1/actions", {
          actionType: "refund",
          ...(principal === undefined ? {} : { principal }),
        });
      const kim = { userId: "kim", scopes: ["payments:*"] };

      // The same user id in both tenants: two people, two counters.
      const acme = [
        await refund(keys.acme.key, kim),
        await refund(keys.acme.key, kim),
        await refund(keys.acme.key, kim),
      ];
      expect(acme.map((r) => r.body.status)).toEqual(["executed", "executed", "denied"]);
      expect(acme[2]!.body).toMatchObject({ denialReason: "RATE_LIMITED" });
      expect(acme[2]!.body.message).toContain("reached the user rate limit of 2 calls");
      const globex = await refund(keys.globex.key, kim);
      expect(globex.body).toMatchObject({ status: "executed" });
      // Scopes are checked per call; no principal where one is needed → UNAUTHENTICATED.
      expect((await refund(keys.globex.key, { userId: "lee", scopes: ["orders:read"] })).body).toMatchObject({
        status: "denied",
        denialReason: "CONDITIONS_DENIED",
      });
      expect((await refund(keys.globex.key)).body).toMatchObject({
        status: "denied",
        denialReason: "UNAUTHENTICATED",
      });
      // A malformed principal is a 400 naming the field.
      const bad = await refund(keys.acme.key, { userId: "" });
      expect(bad.status).toBe(400);

      // Each tenant's audit holds its own records, with the user.
      const acmeAudit = await call(keys.acmeOps.key, "GET", "/v1/audit");
      const acmeItems = acmeAudit.body.items as {
        org: string;
        user: { id: string } | null;
        denial_reason: string | null;
      }[];
      expect(acmeItems.map((r) => [r.org, r.user?.id ?? null, r.denial_reason])).toEqual([
        ["acme", "kim", null],
        ["acme", "kim", null],
        ["acme", "kim", "RATE_LIMITED"],
      ]);
      const globexAudit = await call(keys.globex.key, "GET", "/v1/audit");
      const globexItems = globexAudit.body.items as { org: string; user: { id: string } | null }[];
      expect(globexItems.map((r) => [r.org, r.user?.id ?? null])).toEqual([
        ["globex", "kim"],
        ["globex", "lee"],
        ["globex", null],
      ]);
    } finally {
      await gateway.close();
    }
  });
});
