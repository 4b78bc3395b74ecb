/** Per-agent budgets through the engine: calls (denied BUDGET_EXCEEDED, audited), tokens and cost reservations. */
import { join } from "node:path";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { describe, expect, it } from "vitest";
import { EngineError, openEngine } from "../src/index.js";
import { agent, POLICY_YAML, policy, tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const small = { agent, actionType: "pr.open", metadata: { pr_size: 5 } };
const dir = tempDir("aa-engine-budgets-");
const pgUrl = pgSchemaUrl();
// On PostgreSQL the calls budget is a counter in the store, shared by replicas (docs/controls.md);
// each engine gets an org of its own there, as the files give the other stores.
const stores = {
  memory: () => ":memory:",
  sqlite: () => join(dir, `budgets-${Math.random()}.db`),
  postgres: () => pgUrl(),
};
let orgs = 0;
const orgId = () => `budgets-${process.pid}-${++orgs}`;

describe.each(Object.entries(stores))("budgets on the %s store", (_kind, store) => {
  it("denies executed calls over the calls budget with BUDGET_EXCEEDED, audited, until the window resets", async () => {
    // Long enough for the calls below to fall in one window on a loaded machine and a remote store.
    const windowMs = 1500;
    const engine = await openEngine({
      policy,
      store: store(),
      orgId: orgId(),
      budgets: { calls: { limit: 2, windowMs } },
    });
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    // A denial and a held call are not executed calls: they do not use the budget.
    expect(await engine.decide({ ...small, metadata: { pr_size: 500 } })).toMatchObject({ status: "denied" });
    expect(await engine.decide({ agent, actionType: "pr.merge" })).toMatchObject({ status: "requested" });
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ limit: 2, windowMs, used: 1 });
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    const over = await engine.decide(small);
    expect(over).toMatchObject({
      status: "denied",
      denialReason: "BUDGET_EXCEEDED",
      conditionsEvaluated: [],
    });
    expect(over.message).toContain(`2 executed calls per ${windowMs} ms`);
    expect(over.message).toContain(engine.agentState(agent.id).budgets.calls!.resetsAt!);
    // Dry runs report it without counting; other agents have their own budget.
    expect(await engine.decide({ ...small, dryRun: true })).toMatchObject({
      denialReason: "BUDGET_EXCEEDED",
    });
    expect(await engine.decide({ ...small, agent: { id: "other" } })).toMatchObject({ status: "executed" });
    // Budget denials are not breaker failures.
    expect(engine.agentState(agent.id)).toMatchObject({ cbState: "closed", cbFailures: 1 });
    const reasons = (await engine.audit()).items.map((e) => e.denial_reason);
    expect(reasons).toEqual([null, "CONDITIONS_DENIED", null, null, "BUDGET_EXCEEDED", null]);
    await sleep(windowMs + 10);
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ used: 1 });
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 7 });
    await engine.close();
  });

  it("reserves tokens and cost before an LLM call and reconciles after; a reservation that does not fit throws", async () => {
    const engine = await openEngine({
      policy,
      store: store(),
      budgets: {
        tokens: { limit: 1000, windowMs: 60_000 },
        cost: { limit: 1.5, windowMs: 60_000 },
        perAgent: { "big-bot": { tokens: { limit: 10_000, windowMs: 60_000 } } },
      },
    });
    const first = engine.reserveTokens(agent.id, { tokens: 600, cost: 0.5 });
    expect(first).toMatchObject({ agentId: agent.id, tokens: 600, cost: 0.5 });
    expect(engine.agentState(agent.id).budgets).toMatchObject({
      tokens: { limit: 1000, used: 0, reserved: 600 },
      cost: { limit: 1.5, used: 0, reserved: 0.5 },
    });
    const refused = (() => {
      try {
        engine.reserveTokens(agent.id, { tokens: 500 });
      } catch (error) {
        return error;
      }
    })() as EngineError;
    expect(refused).toBeInstanceOf(EngineError);
    expect(refused).toMatchObject({ code: "BUDGET_EXCEEDED", status: 429 });
    expect(refused.message).toContain("0 used and 600 reserved of 1000");
    engine.reconcileTokens(first.id, { tokens: 450, cost: 0.25 });
    expect(engine.agentState(agent.id).budgets).toMatchObject({
      tokens: { used: 450, reserved: 0 },
      cost: { used: 0.25, reserved: 0 },
    });
    expect(() => engine.reconcileTokens(first.id, { tokens: 1 })).toThrow(
      expect.objectContaining({ code: "RESERVATION_NOT_FOUND" }),
    );
    // Reconciled usage counts against the window; cost has its own limit.
    expect(() => engine.reserveTokens(agent.id, { tokens: 551 })).toThrow(/tokens/);
    expect(() => engine.reserveTokens(agent.id, { cost: 1.3 })).toThrow(/cost/);
    const fits = engine.reserveTokens(agent.id, { tokens: 550, cost: 1.25 });
    engine.reconcileTokens(fits.id, { tokens: 550 });
    // Per-agent limits override the defaults for the kinds they name (cost still 1.5).
    expect(engine.reserveTokens("big-bot", { tokens: 9000 }).tokens).toBe(9000);
    expect(() => engine.reserveTokens("big-bot", { cost: 2 })).toThrow(/cost/);
    await engine.close();
  });
});

describe("budgets (settings, expiry, modes)", () => {
  it("a retry with the same eventId returns the first decision and is not counted again", async () => {
    const engine = await openEngine({
      policy,
      store: join(dir, "idempotent.db"),
      budgets: { calls: { limit: 1, windowMs: 60_000 } },
    });
    const first = await engine.decide({ ...small, eventId: "call-1" });
    expect(await engine.decide({ ...small, eventId: "call-1" })).toEqual(first);
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ used: 1 });
    expect(await engine.decide({ ...small, eventId: "call-2" })).toMatchObject({
      denialReason: "BUDGET_EXCEEDED",
    });
    await engine.close();
  });

  it("releases reservations that are not reconciled within reservationTtlMs", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      budgets: { tokens: { limit: 100, windowMs: 60_000 }, reservationTtlMs: 30 },
    });
    const held = engine.reserveTokens(agent.id, { tokens: 100 });
    expect(() => engine.reserveTokens(agent.id, { tokens: 1 })).toThrow(/BUDGET|reserve/);
    await sleep(40);
    expect(engine.agentState(agent.id).budgets.tokens).toMatchObject({ reserved: 0, used: 0 });
    expect(engine.reserveTokens(agent.id, { tokens: 100 }).tokens).toBe(100);
    expect(() => engine.reconcileTokens(held.id, { tokens: 100 })).toThrow(/expired/);
    await engine.close();
  });

  it("counts calls only in enforce mode, counts released approvals, and rejects bad settings naming the option", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      budgets: { calls: { limit: 1, windowMs: 60_000 } },
    });
    expect(await engine.decide({ ...small, enforcementMode: "observe" })).toMatchObject({
      status: "executed",
    });
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ used: 0 });
    const held = await engine.decide({ agent, actionType: "pr.merge" });
    await engine.approve(held.approvalId!, "reviewer");
    expect(await engine.releaseApproval(held.approvalId!, agent.id)).toMatchObject({ status: "executed" });
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ used: 1 });
    expect(await engine.decide(small)).toMatchObject({ denialReason: "BUDGET_EXCEEDED" });
    expect(await engine.decide({ ...small, enforcementMode: "observe" })).toMatchObject({
      status: "executed",
    });
    expect(() => engine.reserveTokens(agent.id, { tokens: -1 })).toThrow(/estimate.tokens/);
    await engine.close();
    for (const [budgets, option] of [
      [{ calls: { limit: -1, windowMs: 10 } }, "budgets.calls.limit"],
      [{ tokens: { limit: 1.5, windowMs: 10 } }, "budgets.tokens.limit"],
      [{ cost: { limit: 1, windowMs: 0 } }, "budgets.cost.windowMs"],
      [{ perAgent: { x: { calls: { limit: 1 } } } }, "budgets.perAgent.x.calls.windowMs"],
      [{ reservationTtlMs: 0 }, "budgets.reservationTtlMs"],
    ] as const) {
      await expect(
        openEngine({ policy, store: ":memory:", budgets: budgets as never }),
      ).rejects.toMatchObject({
        code: "INVALID_OPTIONS",
        details: { option },
      });
    }
    // Without budgets, agentState has none and reservations always fit.
    const free = await openEngine({ policy, store: ":memory:" });
    expect(free.agentState(agent.id).budgets).toEqual({});
    free.reconcileTokens(free.reserveTokens(agent.id, { tokens: 1e9 }).id, { tokens: 1e9 });
    await free.close();
  });
});

describe("budgets from the policy file", () => {
  it("applies the policy's `budgets:` section when openEngine has no `budgets`, and follows setPolicy", async () => {
    const withBudgets = (calls: number) =>
      compilePolicy(
        parsePolicy(
          `${POLICY_YAML}budgets:\n  calls: { limit: ${calls}, window: 1h }\n  tokens: { limit: 100, window: 1d }\n  agents:\n    big-bot: { calls: { limit: 50, window: 1h } }\n`,
        ),
      );
    const engine = await openEngine({ policy: withBudgets(1), store: join(dir, "policy-budgets.db") });
    expect(engine.agentState(agent.id).budgets).toMatchObject({
      calls: { limit: 1, windowMs: 3_600_000 },
      tokens: { limit: 100, windowMs: 86_400_000 },
    });
    expect(engine.agentState("big-bot").budgets).toMatchObject({
      calls: { limit: 50 },
      tokens: { limit: 100 },
    });
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    expect(await engine.decide(small)).toMatchObject({ denialReason: "BUDGET_EXCEEDED" });
    // A new policy raises the limit; the calls already counted in the window stay counted.
    await engine.setPolicy(withBudgets(2));
    expect(engine.agentState(agent.id).budgets.calls).toMatchObject({ limit: 2, used: 1 });
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    expect(await engine.decide(small)).toMatchObject({ denialReason: "BUDGET_EXCEEDED" });
    await engine.setPolicy(policy);
    expect(engine.agentState(agent.id).budgets).toEqual({});
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    await engine.close();
    // An explicit option wins over the policy file.
    const explicit = await openEngine({
      policy: withBudgets(1),
      store: ":memory:",
      budgets: { calls: { limit: 3, windowMs: 1000 } },
    });
    expect(explicit.agentState(agent.id).budgets).toEqual({
      calls: { limit: 3, windowMs: 1000, used: 0, reserved: 0 },
    });
    await explicit.close();
  });
});
