/** The per-agent circuit breaker, through the engine (memory store): opening, half-open probing, failures. */
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { agent, policy } from "./helpers.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const tooBig = { agent, actionType: "pr.open", metadata: { pr_size: 500 } };
const small = { agent, actionType: "pr.open", metadata: { pr_size: 5 } };

describe("circuit breaker", () => {
  it("opens after `threshold` denials in the window and denies every call with CIRCUIT_OPEN", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      circuitBreaker: { threshold: 3, windowMs: 60_000, coolDownMs: 60_000 },
    });
    for (let i = 0; i < 2; i++) expect((await engine.decide(tooBig)).denialReason).toBe("CONDITIONS_DENIED");
    expect(engine.agentState(agent.id)).toMatchObject({ cbState: "closed", cbFailures: 2 });
    expect((await engine.decide(tooBig)).denialReason).toBe("CONDITIONS_DENIED");
    const state = engine.agentState(agent.id);
    expect(state.cbState).toBe("open");
    expect(Date.parse(state.cbOpenUntil!)).toBeGreaterThan(Date.now());
    const blocked = await engine.decide(small);
    expect(blocked).toMatchObject({
      status: "denied",
      denialReason: "CIRCUIT_OPEN",
      conditionsEvaluated: [],
    });
    expect(blocked.message).toContain("circuit breaker");
    // Other agents are unaffected; dry runs report the open circuit too.
    expect(await engine.decide({ ...small, agent: { id: "other" } })).toMatchObject({ status: "executed" });
    expect(await engine.decide({ ...small, dryRun: true })).toMatchObject({ denialReason: "CIRCUIT_OPEN" });
    const records = (await engine.audit()).items.map((e) => e.denial_reason);
    expect(records).toEqual([
      "CONDITIONS_DENIED",
      "CONDITIONS_DENIED",
      "CONDITIONS_DENIED",
      "CIRCUIT_OPEN",
      null,
    ]);
    await engine.close();
  });

  it("half-opens after the cool-down: a denied probe re-opens it, an allowed probe closes it", async () => {
    const coolDownMs = 40;
    const engine = await openEngine({
      policy,
      store: ":memory:",
      circuitBreaker: { threshold: 2, windowMs: 60_000, coolDownMs },
    });
    await engine.decide(tooBig);
    await engine.decide(tooBig);
    expect(engine.agentState(agent.id).cbState).toBe("open");
    await sleep(coolDownMs + 5);
    expect(engine.agentState(agent.id).cbState).toBe("half-open");
    // The probe is evaluated normally (and denied by the policy): open again.
    expect(await engine.decide(tooBig)).toMatchObject({ denialReason: "CONDITIONS_DENIED" });
    expect(engine.agentState(agent.id).cbState).toBe("open");
    expect(await engine.decide(small)).toMatchObject({ denialReason: "CIRCUIT_OPEN" });
    await sleep(coolDownMs + 5);
    // A probe held for approval is not a failure: it closes the circuit too.
    expect(await engine.decide({ agent, actionType: "pr.merge" })).toMatchObject({ status: "requested" });
    expect(engine.agentState(agent.id)).toMatchObject({ cbState: "closed", cbFailures: 0 });
    expect(await engine.decide(small)).toMatchObject({ status: "executed" });
    await engine.close();
  });

  it("counts outcomes reported as `failure`, forgets failures older than the window, and can be disabled", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      circuitBreaker: { threshold: 2, windowMs: 30, coolDownMs: 60_000 },
    });
    const first = await engine.decide(small);
    await engine.report(first.auditEventId, { status: "failure" }, agent.id);
    expect(engine.agentState(agent.id)).toMatchObject({ cbState: "closed", cbFailures: 1 });
    await sleep(40);
    expect(engine.agentState(agent.id).cbFailures).toBe(0);
    await engine.report(first.auditEventId, { status: "success" }, agent.id);
    await engine.report(first.auditEventId, { status: "failure" }, agent.id);
    expect(engine.agentState(agent.id).cbState).toBe("closed");
    await engine.decide(tooBig);
    expect(engine.agentState(agent.id).cbState).toBe("open");
    await engine.close();

    const off = await openEngine({ policy, store: ":memory:", circuitBreaker: { threshold: 0 } });
    for (let i = 0; i < 20; i++) await off.decide(tooBig);
    expect(off.agentState(agent.id)).toMatchObject({ cbState: "closed", cbFailures: 0 });
    await off.close();
  });

  it("applies only in enforce mode; rejects bad settings with a typed error naming the option", async () => {
    const engine = await openEngine({ policy, store: ":memory:", circuitBreaker: { threshold: 1 } });
    await engine.decide({ ...tooBig, enforcementMode: "observe" });
    expect(engine.agentState(agent.id).cbState).toBe("closed");
    await engine.close();
    await expect(
      openEngine({ policy, store: ":memory:", circuitBreaker: { windowMs: 0 } }),
    ).rejects.toMatchObject({ code: "INVALID_OPTIONS", details: { option: "circuitBreaker.windowMs" } });
    await expect(openEngine({ policy, store: ":memory:", controlsRefreshMs: 1 })).rejects.toMatchObject({
      code: "INVALID_OPTIONS",
      details: { option: "controlsRefreshMs" },
    });
  });
});
