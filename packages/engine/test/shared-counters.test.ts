/**
 * Rate limits and the calls budget across replicas: two engines, each with its own PostgreSQL
 * store (own pool, own connections), on one schema and one org, share their counters, so a
 * fan-out spread over both never passes a limit, with the in-memory semantics (denials and dry
 * runs do not count, held calls count against rate limits only, windows roll).
 */
import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import { type DecisionEngine, type EngineOptions, openEngine } from "../src/index.js";
import { agent, policy } from "./helpers.js";
import { PG_URL, pgSchemaUrl } from "./pg.js";

const pgUrl = pgSchemaUrl();
const opened: DecisionEngine[] = [];
afterAll(async () => {
  for (const engine of opened) await engine.close();
});

/** Two replicas of one fresh org. */
async function replicas(options: Omit<EngineOptions, "policy" | "store" | "orgId">) {
  const orgId = `org-${randomUUID()}`;
  const pair = await Promise.all([0, 1].map(() => openEngine({ policy, store: pgUrl(), orgId, ...options })));
  opened.push(...pair);
  return { orgId, a: pair[0]!, b: pair[1]! };
}

const small = { agent, actionType: "pr.open", metadata: { pr_size: 5 } };
const alice = { userId: "alice", tenant: "acme" };

describe("counters shared by replicas on PostgreSQL", () => {
  it("a fan-out over two replicas never passes an agent's rate limit", async () => {
    const { a, b } = await replicas({ rateLimits: { agent: { limit: 10, windowMs: 3_600_000 } } });
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).decide(small)),
    );
    expect(results.filter((r) => r.status === "executed")).toHaveLength(10);
    const limited = results.filter((r) => r.denialReason === "RATE_LIMITED");
    expect(limited).toHaveLength(30);
    expect(limited[0]!.message).toContain(`Agent ${agent.id} (tenant `);
    expect(limited[0]!.message).toContain("reached the agent rate limit of 10 calls per 3600000 ms");
    // Both replicas refuse from now on, and the chain holds all 40 decisions.
    expect((await a.decide(small)).denialReason).toBe("RATE_LIMITED");
    expect((await b.decide(small)).denialReason).toBe("RATE_LIMITED");
    expect(await b.verify()).toMatchObject({ chainValid: true, checked: 42 });
  });

  it("a user's limit spans agents and replicas; tenants and denied calls do not mix in", async () => {
    const { a, b } = await replicas({ rateLimits: { user: { limit: 3, windowMs: 3_600_000 } } });
    const call = (engine: DecisionEngine, agentId: string, principal = alice, pr_size = 5) =>
      engine.decide({ agent: { id: agentId }, actionType: "pr.open", metadata: { pr_size }, principal });
    // Denied by the policy, and dry runs: not counted.
    expect((await call(a, "planner", alice, 500)).status).toBe("denied");
    expect((await call(b, "planner", alice, 500)).status).toBe("denied");
    expect(
      (
        await b.decide({
          agent: { id: "x" },
          actionType: "pr.open",
          metadata: { pr_size: 1 },
          principal: alice,
          dryRun: true,
        })
      ).status,
    ).toBe("executed");
    const burst = await Promise.all([
      call(a, "planner"),
      call(b, "worker-1"),
      call(a, "worker-2"),
      call(b, "worker-3"),
      call(a, "worker-4"),
    ]);
    expect(burst.filter((r) => r.status === "executed")).toHaveLength(3);
    expect(burst.filter((r) => r.denialReason === "RATE_LIMITED")).toHaveLength(2);
    expect(burst.find((r) => r.status === "denied")!.message).toContain(
      "User alice (tenant acme) reached the user rate limit of 3 calls per 3600000 ms",
    );
    // A dry run reports the reached limit; the same user id in another tenant is another counter.
    expect(
      (
        await a.decide({
          agent: { id: "x" },
          actionType: "pr.open",
          metadata: { pr_size: 1 },
          principal: alice,
          dryRun: true,
        })
      ).denialReason,
    ).toBe("RATE_LIMITED");
    expect((await call(b, "planner", { ...alice, tenant: "globex" })).status).toBe("executed");
  });

  it("the calls budget counts executed calls of every replica; held calls count against rate limits only", async () => {
    const budget = await replicas({ budgets: { calls: { limit: 4, windowMs: 3_600_000 } } });
    // Held calls (approval needed) do not use the budget.
    expect((await budget.a.decide({ agent, actionType: "pr.merge" })).status).toBe("requested");
    expect((await budget.b.decide({ agent, actionType: "pr.merge" })).status).toBe("requested");
    const spent = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? budget.a : budget.b).decide(small)),
    );
    expect(spent.filter((r) => r.status === "executed")).toHaveLength(4);
    expect(spent.filter((r) => r.denialReason === "BUDGET_EXCEEDED")).toHaveLength(4);
    // A replica's view of the budget is the shared counter, as of its last decision.
    expect((await budget.a.decide(small)).denialReason).toBe("BUDGET_EXCEEDED");
    expect(budget.a.agentState(agent.id).budgets.calls).toMatchObject({ limit: 4, used: 4 });

    const both = await replicas({
      budgets: { calls: { limit: 4, windowMs: 3_600_000 } },
      rateLimits: { agent: { limit: 5, windowMs: 3_600_000 } },
    });
    // Two held calls use 2 of the 5 rate-limit slots: 3 executed calls reach the limit, not the budget.
    expect((await both.a.decide({ agent, actionType: "pr.merge" })).status).toBe("requested");
    expect((await both.b.decide({ agent, actionType: "pr.merge" })).status).toBe("requested");
    const limited = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? both.a : both.b).decide(small)),
    );
    expect(limited.filter((r) => r.status === "executed")).toHaveLength(3);
    expect(limited.filter((r) => r.denialReason === "RATE_LIMITED")).toHaveLength(5);
    expect((await both.b.decide(small)).denialReason).toBe("RATE_LIMITED");
    expect(both.b.agentState(agent.id).budgets.calls).toMatchObject({ limit: 4, used: 3 });
  });

  it("an approved call released on one replica uses the budget every replica sees; observe mode counts nothing", async () => {
    const { a, b } = await replicas({ budgets: { calls: { limit: 2, windowMs: 3_600_000 } } });
    expect((await a.decide({ ...small, enforcementMode: "observe" })).status).toBe("executed");
    const held = await a.decide({ agent, actionType: "pr.merge" });
    await b.approve(held.approvalId!, "reviewer");
    expect(await b.releaseApproval(held.approvalId!, agent.id)).toMatchObject({ status: "executed" });
    expect(b.agentState(agent.id).budgets.calls).toMatchObject({ used: 1 });
    expect((await a.decide(small)).status).toBe("executed");
    expect((await b.decide(small)).denialReason).toBe("BUDGET_EXCEEDED");
    expect((await a.decide(small)).denialReason).toBe("BUDGET_EXCEEDED");
  });

  it("a window rolls for every replica once its time is up", async () => {
    const { orgId, a, b } = await replicas({ rateLimits: { agent: { limit: 2, windowMs: 3_600_000 } } });
    expect((await a.decide(small)).status).toBe("executed");
    expect((await b.decide(small)).status).toBe("executed");
    expect((await a.decide(small)).denialReason).toBe("RATE_LIMITED");
    // The window started an hour ago, as far as the store is concerned.
    const schema = new URL(pgUrl()).searchParams.get("schema");
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      const { rowCount } = await client.query(
        `UPDATE ${schema}.counters SET started_at = started_at - 3600000 WHERE org = $1`,
        [orgId],
      );
      expect(rowCount).toBe(1);
    } finally {
      await client.end();
    }
    const next = await Promise.all([a.decide(small), b.decide(small), a.decide(small)]);
    expect(next.map((r) => r.status).sort()).toEqual(["denied", "executed", "executed"]);
  });

  it("a call counted as it was predicted to pass, then denied by its own replica's breaker, gives its count back", async () => {
    const { a, b } = await replicas({
      rateLimits: { agent: { limit: 2, windowMs: 3_600_000 } },
      circuitBreaker: { threshold: 1, coolDownMs: 3_600_000 },
    });
    // One tick, one store round trip: the allowed call is counted (predicted to execute); the
    // denied one, answered first, opens a's breaker, so the allowed one is denied after all.
    const [denied, allowed] = await Promise.all([
      a.decide({ ...small, metadata: { pr_size: 500 } }),
      a.decide(small),
    ]);
    expect(denied.denialReason).toBe("CONDITIONS_DENIED");
    expect(allowed.denialReason).toBe("CIRCUIT_OPEN");
    await a.close(); // waits for the count to be given back
    // Both slots are free on b (whose breaker is its own); containment denials do not count either.
    await b.contain(agent.id, "ops", "incident");
    expect((await b.decide(small)).denialReason).toBe("CIRCUIT_OPEN");
    await b.release(agent.id, "ops", "fixed");
    expect((await b.decide(small)).status).toBe("executed");
    expect((await b.decide(small)).status).toBe("executed");
    expect((await b.decide(small)).denialReason).toBe("RATE_LIMITED");
  });

  it("counters whose window has ended are deleted in the background; live ones and their counts stay", async () => {
    const { orgId, a, b } = await replicas({
      rateLimits: { user: { limit: 2, windowMs: 3_600_000 } },
      counterSweepMs: 10,
    });
    const as = (userId: string) => ({ ...small, principal: { userId, tenant: "acme" } });
    // 30 one-off users, then one who uses her whole limit.
    await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 ? a : b).decide(as(`once-${i}`))));
    expect((await a.decide(as("alice"))).status).toBe("executed");
    expect((await b.decide(as("alice"))).status).toBe("executed");
    expect((await a.decide(as("alice"))).denialReason).toBe("RATE_LIMITED");
    const schema = new URL(pgUrl()).searchParams.get("schema");
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const names = async () =>
      (
        await client.query<{ name: string }>(
          `SELECT name FROM ${schema}.counters WHERE org = $1 ORDER BY name`,
          [orgId],
        )
      ).rows.map((r) => r.name);
    try {
      expect(await names()).toHaveLength(31);
      // The one-off users' windows ended an hour ago, as far as the store is concerned.
      await client.query(
        `UPDATE ${schema}.counters SET started_at = started_at - 3600000 WHERE org = $1 AND name LIKE '%once-%'`,
        [orgId],
      );
      // The next checked call starts a sweep (its interval has passed); close() waits for it.
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect((await a.decide(as("bob"))).status).toBe("executed");
      await a.close();
      expect(await names()).toEqual(["rate:user:4:acme:alice", "rate:user:4:acme:bob"]);
      // Alice is still at her limit on every replica; a swept user starts a fresh window.
      expect((await b.decide(as("alice"))).denialReason).toBe("RATE_LIMITED");
      expect((await b.decide(as("once-3"))).status).toBe("executed");
    } finally {
      await client.end();
    }
  });

  it("a sweep skips counters a take holds and deletes the rest in batches", async () => {
    const { orgId, a } = await replicas({ rateLimits: { user: { limit: 5, windowMs: 3_600_000 } } });
    await Promise.all(
      Array.from({ length: 5 }, (_, i) =>
        a.decide({ ...small, principal: { userId: `u${i}`, tenant: "t" } }),
      ),
    );
    const schema = new URL(pgUrl()).searchParams.get("schema");
    const holder = new pg.Client({ connectionString: `${PG_URL}?options=-c%20search_path%3D${schema}` });
    const sweeper = new pg.Client({ connectionString: `${PG_URL}?options=-c%20search_path%3D${schema}` });
    await Promise.all([holder.connect(), sweeper.connect()]);
    try {
      await holder.query("BEGIN");
      await holder.query("SELECT 1 FROM counters WHERE org = $1 AND name LIKE '%:u0' FOR UPDATE", [orgId]);
      // A window of 0 ms has ended for every counter: all but the held one go, two per statement.
      const sweep = async () =>
        (await sweeper.query<{ n: number }>("SELECT aa_sweep_counters($1, 0, 2) AS n", [orgId])).rows[0]!.n;
      expect([await sweep(), await sweep(), await sweep()]).toEqual([2, 2, 0]);
      await holder.query("COMMIT");
      expect(await sweep()).toBe(1);
      const { rows } = await sweeper.query("SELECT count(*)::int AS n FROM counters WHERE org = $1", [orgId]);
      expect(rows[0].n).toBe(0);
    } finally {
      await Promise.all([holder.end(), sweeper.end()]);
    }
  });
});
