/**
 * POLICY_TAMPERED over the gateway, on real SQLite and PostgreSQL, with two gateways (replicas) on
 * one database: a policy row edited with SQL behind the gateways' back denies every call of the
 * org on both (fast path and Fastify route), audited and shown in posture and readiness; a PUT
 * ends it; a gateway started on an edited row is tampered from its first decision; and repeated
 * legitimate PUTs on both replicas while they decide never produce a false POLICY_TAMPERED.
 */
import { DatabaseSync } from "node:sqlite";
import { parsePolicy } from "@aa/policy";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { createGateway, createKey, type Gateway } from "../src/index.js";
import { contractProblems } from "./contract.js";
import { POLICY, sqliteDatabase } from "./harness.js";
import { PG_URL, pgSchemas } from "./pg.js";

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON, checked against the OpenAPI file
type Json = any;

const pgDatabase = pgSchemas();
const open: Gateway[] = [];
afterEach(async () => {
  for (const gateway of open.splice(0)) await gateway.close();
});

const DEPLOYS = {
  version: 1,
  policies: [
    { name: "reads", action: "read.*", effect: "allow" },
    { name: "deploys", action: "deploy", effect: "allow" },
  ],
  redact: [{ path: "$.token", mode: "mask" }],
};
const ONLY_READS = { version: 1, policies: [{ name: "reads", action: "read.*", effect: "allow" }] };

interface Replica {
  gateway: Gateway;
  url: string;
}

async function replica(database: string): Promise<Replica> {
  const gateway = await createGateway({ policy: POLICY, database, keyCacheMs: 0 });
  open.push(gateway);
  return { gateway, url: await gateway.listen({ port: 0 }) };
}

async function keysFor(gateway: Gateway) {
  const make = async (kind: "agent" | "operator" | "admin", agentId?: string) =>
    (await createKey(gateway.store, { kind, orgId: "acme", ...(agentId ? { agentId } : {}), name: kind }))
      .key;
  return {
    agent: await make("agent", "release-bot"),
    operator: await make("operator"),
    admin: await make("admin"),
  };
}

/** One request; a JSON answer is checked against the OpenAPI file. */
async function call(
  r: Replica,
  key: string | undefined,
  method: string,
  path: string,
  body?: unknown,
  contentType = "application/json",
): Promise<{ status: number; body: Json }> {
  const response = await fetch(r.url + path, {
    method,
    headers: {
      ...(key ? { authorization: `Bearer ${key}` } : {}),
      ...(body !== undefined ? { "content-type": contentType } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const parsed = JSON.parse(await response.text());
  const problems = contractProblems(method, path, response.status, parsed);
  if (problems.length > 0) throw new Error(`response outside the OpenAPI file: ${problems.join("; ")}`);
  return { status: response.status, body: parsed };
}

/** A decision through the fast path (`application/json`) or Fastify's route (a content type it leaves alone). */
const decide = (r: Replica, key: string, actionType: string, path: "fast" | "fastify" = "fast") =>
  call(
    r,
    key,
    "POST",
    "/v1/actions",
    { actionType, args: { token: "secret-value" } },
    path === "fast" ? "application/json" : "application/json; charset=UTF-8",
  );

/** Waits (bounded) until `probe` holds; the policy check runs every second. */
async function eventually(probe: () => Promise<boolean>, what: string, limitMs = 8000): Promise<void> {
  const end = Date.now() + limitMs;
  while (Date.now() < end) {
    if (await probe()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`not within ${limitMs} ms: ${what}`);
}

/** Runs SQL on the gateway's database directly (an edit behind the gateways' back). */
async function sql(database: string, text: string, params: string[]): Promise<void> {
  if (database.startsWith("sqlite:")) {
    const db = new DatabaseSync(database.slice("sqlite:".length));
    try {
      db.exec("PRAGMA busy_timeout = 5000");
      db.prepare(text.replace(/\$\d+/g, "?")).run(...params);
    } finally {
      db.close();
    }
    return;
  }
  const schema = new URL(database).searchParams.get("schema")!;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    await client.query(`SET search_path TO ${schema}`);
    await client.query(text, params);
  } finally {
    await client.end();
  }
}

describe.each([
  ["SQLite", () => sqliteDatabase()],
  ["PostgreSQL", () => pgDatabase()],
])("a tampered policy row on %s", (_name, databaseFor) => {
  it("denies the org's calls POLICY_TAMPERED on every replica and both HTTP paths until an admin PUTs a policy", async () => {
    const database = databaseFor();
    const a = await replica(database);
    const b = await replica(database);
    const keys = await keysFor(a.gateway);
    const put = await call(a, keys.admin, "PUT", "/v1/policies", { policy: DEPLOYS });
    expect(put.status).toBe(200);
    await eventually(
      async () => (await decide(b, keys.agent, "deploy")).body.status === "executed",
      "B enforces the policy replaced through A",
    );

    // Behind the gateways' back: the row's policy now allows everything, its hash unchanged.
    const allowAll = { version: 1, policies: [{ name: "anything", action: "**", effect: "allow" }] };
    await sql(database, "UPDATE aa_gateway_policies SET policy = $1 WHERE org_id = $2", [
      JSON.stringify(allowAll),
      "acme",
    ]);
    for (const r of [a, b]) {
      await eventually(
        async () => (await decide(r, keys.agent, "read.file")).body.denialReason === "POLICY_TAMPERED",
        "the replica denies POLICY_TAMPERED",
      );
      for (const path of ["fast", "fastify"] as const) {
        for (const action of ["read.file", "deploy", "anything.else"]) {
          const denied = await decide(r, keys.agent, action, path);
          expect(denied).toMatchObject({
            status: 200,
            body: { status: "denied", denialReason: "POLICY_TAMPERED" },
          });
          expect(denied.body.message).toContain(`policy_hash is ${put.body.policyHash}`);
          expect(denied.body.message).toContain("PUT /v1/policies");
        }
      }
      expect((await call(r, undefined, "GET", "/v1/ready")).body).toMatchObject({
        status: "ready",
        policyTampered: 1,
      });
      const posture = (await call(r, keys.operator, "GET", "/v1/posture")).body;
      expect(posture.policyIntegrity).toMatchObject({
        state: "tampered",
        storedHash: put.body.policyHash,
        recordedHash: put.body.policyHash,
      });
      expect(posture.components.chainIntegrity.score).toBe(0);
      expect((await call(r, keys.operator, "GET", "/v1/policies")).body.policyIntegrity.state).toBe(
        "tampered",
      );
    }

    // Audited like any denial (redacted), one policy.tampered record per replica, chain intact.
    const audit = (await call(a, keys.operator, "GET", "/v1/audit?limit=1000")).body.items as Json[];
    const tamperedRecords = audit.filter((r) => r.kind === "policy.tampered");
    expect(tamperedRecords).toHaveLength(2);
    expect(tamperedRecords[0]).toMatchObject({
      agent: "gateway",
      metadata: { storedHash: put.body.policyHash, recordedHash: put.body.policyHash },
    });
    const denials = audit.filter((r) => r.denial_reason === "POLICY_TAMPERED");
    expect(denials.length).toBeGreaterThanOrEqual(12);
    expect(denials.every((r) => r.args.token === "[REDACTED]")).toBe(true);
    expect((await call(a, keys.operator, "GET", "/v1/audit/verify")).body).toMatchObject({
      chainValid: true,
    });

    // The fix: an admin replaces the policy through B; both replicas decide normally again.
    expect((await call(b, keys.admin, "PUT", "/v1/policies", { policy: ONLY_READS })).status).toBe(200);
    expect((await decide(b, keys.agent, "read.file")).body.status).toBe("executed");
    await eventually(
      async () => (await decide(a, keys.agent, "read.file")).body.status === "executed",
      "A enforces the replaced policy",
    );
    for (const r of [a, b]) {
      expect((await decide(r, keys.agent, "deploy", "fastify")).body).toMatchObject({
        status: "denied",
        denialReason: "NO_MATCHING_POLICY",
      });
      expect((await call(r, undefined, "GET", "/v1/ready")).body.policyTampered).toBe(0);
      expect((await call(r, keys.operator, "GET", "/v1/posture")).body.policyIntegrity.state).toBe("intact");
    }
  });

  it("is tampered from the first decision when the row was edited while the gateway was down", async () => {
    const database = databaseFor();
    const first = await replica(database);
    const keys = await keysFor(first.gateway);
    const put = await call(first, keys.admin, "PUT", "/v1/policies", { policy: DEPLOYS });
    expect((await decide(first, keys.agent, "deploy")).body.status).toBe("executed");
    await first.gateway.close();
    open.splice(open.indexOf(first.gateway), 1);

    // A consistent edit (policy and hash rewritten together) that no PUT recorded.
    const allowAll = parsePolicy(
      `version: 1\npolicies:\n  - { name: anything, action: "**", effect: allow }\n`,
    );
    const { hashPolicyDocument } = await import("@aa/policy");
    await sql(database, "UPDATE aa_gateway_policies SET policy = $1, policy_hash = $2 WHERE org_id = $3", [
      JSON.stringify(allowAll),
      hashPolicyDocument(allowAll),
      "acme",
    ]);
    const restarted = await replica(database);
    const denied = await decide(restarted, keys.agent, "deploy");
    expect(denied.body).toMatchObject({ status: "denied", denialReason: "POLICY_TAMPERED" });
    expect(denied.body.message).toContain(
      `(${hashPolicyDocument(allowAll)}) was never recorded in the audit chain`,
    );
    expect(denied.body.message).toContain(`newest policy change is ${put.body.policyHash}`);

    // A row that is not even a policy, and a deleted row, are tampering too.
    await sql(database, "UPDATE aa_gateway_policies SET policy = $1 WHERE org_id = $2", ["not json", "acme"]);
    await eventually(
      async () =>
        (await decide(restarted, keys.agent, "read.file")).body.message?.includes("not JSON") === true,
      "a row that is not JSON is reported",
    );
    // GET shows the row as found (its text), not the start-up policy it would otherwise fall back to.
    const shown = await call(restarted, keys.admin, "GET", "/v1/policies");
    expect(shown.body).toMatchObject({ policy: "not json", policyIntegrity: { state: "tampered" } });
    await sql(database, "DELETE FROM aa_gateway_policies WHERE org_id = $1", ["acme"]);
    await eventually(
      async () =>
        (await decide(restarted, keys.agent, "read.file")).body.message?.includes("is missing") === true,
      "a deleted row is reported",
    );
    expect((await call(restarted, keys.admin, "PUT", "/v1/policies", { policy: DEPLOYS })).status).toBe(200);
    expect((await decide(restarted, keys.agent, "deploy")).body.status).toBe("executed");
  });

  it("never reports POLICY_TAMPERED while admins PUT policies on both replicas as they decide", async () => {
    const database = databaseFor();
    const a = await replica(database);
    const b = await replica(database);
    const keys = await keysFor(a.gateway);
    let putting = true;
    const outcomes: Json[] = [];
    const decider = async (r: Replica) => {
      while (putting) outcomes.push((await decide(r, keys.agent, "read.file")).body);
    };
    const putter = async (r: Replica, offset: number) => {
      // Alternating between two policies, so a row can equal an older recorded change.
      for (let i = 0; i < 25; i++) {
        const policy = (i + offset) % 2 === 0 ? DEPLOYS : ONLY_READS;
        expect((await call(r, keys.admin, "PUT", "/v1/policies", { policy })).status).toBe(200);
        await new Promise((resolve) => setTimeout(resolve, 60 + ((i * 37) % 90)));
      }
    };
    const deciding = [decider(a), decider(b), decider(a), decider(b)];
    await Promise.all([putter(a, 0), putter(b, 1)]);
    // Past two policy checks after the last PUT, on both replicas.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    putting = false;
    await Promise.all(deciding);
    expect(outcomes.length).toBeGreaterThan(50);
    expect(outcomes.filter((o) => o.denialReason === "POLICY_TAMPERED")).toEqual([]);
    expect(outcomes.every((o) => o.status === "executed")).toBe(true);
    const audit = (await call(a, keys.operator, "GET", "/v1/audit?limit=1000&actionType=policy.tamper")).body;
    expect(audit.items).toEqual([]);
    for (const r of [a, b]) {
      expect((await call(r, keys.operator, "GET", "/v1/posture")).body.policyIntegrity.state).toBe("intact");
    }
  });
});
