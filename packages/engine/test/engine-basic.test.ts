import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { EngineError, openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";

describe("decide (memory store)", () => {
  it("allows, denies with failed conditions, and chains every decision", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const allowed = await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 10 } });
    expect(allowed.status).toBe("executed");
    expect(allowed.policyName).toBe("small-prs");
    expect(allowed.policyHash).toBe(policy.hash);
    const denied = await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 500 } });
    expect(denied.status).toBe("denied");
    expect(denied.denialReason).toBe("CONDITIONS_DENIED");
    expect(denied.conditionsEvaluated).toEqual([
      expect.objectContaining({
        field: "metadata.pr_size",
        operator: "lt",
        expected: 50,
        actual: 500,
        result: false,
      }),
    ]);
    const unknown = await engine.decide({ agent, actionType: "rm.rf" });
    expect(unknown).toMatchObject({ status: "denied", denialReason: "NO_MATCHING_POLICY" });

    const page = await engine.audit();
    expect(page.items.map((e) => [e.seq, e.status, e.id])).toEqual([
      [1, "executed", allowed.auditEventId],
      [2, "denied", denied.auditEventId],
      [3, "denied", unknown.auditEventId],
    ]);
    expect(page.items[1]!.prev_hash).toBe(page.items[0]!.hash);
    expect(await engine.verify()).toEqual({ chainValid: true, checked: 3, firstBrokenAtRowId: null });
    await engine.close();
  });

  it("dry runs evaluate without writing", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const r = await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 1 }, dryRun: true });
    expect(r).toMatchObject({ status: "executed", auditEventId: "" });
    expect((await engine.audit()).items).toHaveLength(0);
    await engine.close();
  });

  it("observe mode executes and records the would-be decision as shadow", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const r = await engine.decide({
      agent,
      actionType: "pr.open",
      metadata: { pr_size: 99 },
      enforcementMode: "observe",
    });
    expect(r.status).toBe("executed");
    expect(r.denialReason).toBeUndefined();
    expect(r.shadow).toEqual({
      status: "denied",
      denialReason: "CONDITIONS_DENIED",
      policyName: "small-prs",
    });
    const [event] = (await engine.audit()).items;
    expect(event).toMatchObject({ mode: "observe", status: "executed", shadow: r.shadow });
    await engine.close();
  });

  it("disabled mode skips evaluation but still records with its marker", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const r = await engine.decide({ agent, actionType: "anything", enforcementMode: "disabled" });
    expect(r.status).toBe("executed");
    expect(r.conditionsEvaluated).toEqual([]);
    const [event] = (await engine.audit()).items;
    expect(event).toMatchObject({ mode: "disabled", status: "executed", policy_name: null });
    await engine.close();
  });

  it("rejects malformed requests with a typed error", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    await expect(engine.decide({ agent: { id: "" }, actionType: "x" })).rejects.toMatchObject({
      name: "EngineError",
      code: "INVALID_REQUEST",
      status: 400,
    });
    await expect(engine.decide({ agent, actionType: "" })).rejects.toBeInstanceOf(EngineError);
    await engine.close();
    await expect(engine.decide({ agent, actionType: "pr.open" })).rejects.toMatchObject({
      code: "ENGINE_CLOSED",
    });
  });

  it("paginates the audit trail with an opaque cursor and filters by action type", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    for (let i = 0; i < 7; i++)
      await engine.decide({ agent, actionType: i % 2 ? "read.file" : "pr.open", metadata: { pr_size: i } });
    const first = await engine.audit({ limit: 3 });
    expect(first.items.map((e) => e.seq)).toEqual([1, 2, 3]);
    const second = await engine.audit({ limit: 3, cursor: first.nextCursor! });
    expect(second.items.map((e) => e.seq)).toEqual([4, 5, 6]);
    const third = await engine.audit({ limit: 3, cursor: second.nextCursor! });
    expect(third.items.map((e) => e.seq)).toEqual([7]);
    expect(third.nextCursor).toBeUndefined();
    const reads = await engine.audit({ actionType: "read.file" });
    expect(reads.items.map((e) => e.seq)).toEqual([2, 4, 6]);
    await expect(engine.audit({ cursor: "garbage!" })).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    await engine.close();
  });
});

describe("decide (SQLite store)", () => {
  it("persists the chain across reopen and keeps verifying", async () => {
    const file = join(tempDir(), "nested", "assembly.db");
    const first = await openEngine({ policy, store: file });
    await first.decide({ agent, actionType: "pr.open", metadata: { pr_size: 1 } });
    await first.close();
    const second = await openEngine({ policy, store: file });
    await second.decide({ agent, actionType: "pr.open", metadata: { pr_size: 2 } });
    const page = await second.audit();
    expect(page.items.map((e) => e.seq)).toEqual([1, 2]);
    expect(await second.verify()).toMatchObject({ chainValid: true, checked: 2 });
    await second.close();
  });

  it("group-commits concurrent decisions into one ordered chain", async () => {
    const file = join(tempDir(), "assembly.db");
    const engine = await openEngine({ policy, store: file });
    const results = await Promise.all(
      Array.from({ length: 250 }, (_, i) =>
        engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: i % 100 } }),
      ),
    );
    expect(new Set(results.map((r) => r.auditEventId)).size).toBe(250);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 250 });
    await engine.close();
  });
});
