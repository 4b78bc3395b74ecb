/** Realtime events projected from the audit chain: mapping, filters, resume, other processes, isolation. */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { type EngineEvent, openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const dir = tempDir("aa-engine-events-");
const pgUrl = pgSchemaUrl();
const freshOrg = () => `org-${Math.random().toString(36).slice(2)}`;

/** Waits (up to 10 s) until `ready()` holds; fails with what was seen otherwise. */
async function until(ready: () => boolean, seen: () => unknown): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`condition not met; saw ${JSON.stringify(seen())}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function collector() {
  const events: EngineEvent[] = [];
  const callback = (event: EngineEvent) => {
    events.push(event);
  };
  const types = () => events.map((e) => e.type);
  const waitFor = (count: number) => until(() => events.length >= count, types);
  return { events, callback, types, waitFor };
}

/** Appends one record of every kind; returns the approval id resolved. */
async function everyKind(engine: Awaited<ReturnType<typeof openEngine>>) {
  await engine.decide({ agent, actionType: "read.file" }); // action.executed
  await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 500 } }); // action.denied
  const held = await engine.decide({ agent, actionType: "pr.merge" }); // approval.requested
  await engine.approve(held.approvalId!, "reviewer", "ok"); // approval.resolved
  await engine.releaseApproval(held.approvalId!, agent.id); // action.executed
  await engine.contain("rogue", "ops", "runaway"); // enforcement.triggered
  await engine.decide({ agent: { id: "rogue" }, actionType: "read.file" }); // denied + enforcement
  await engine.release("rogue", "ops", "fixed"); // enforcement.triggered
  await engine.setPolicy(policy.document, "ops"); // policy.changed
  return held.approvalId!;
}

const EVERY_KIND_TYPES = [
  "action.executed",
  "action.denied",
  "approval.requested",
  "approval.resolved",
  "action.executed",
  "enforcement.triggered",
  "action.denied",
  "enforcement.triggered",
  "enforcement.triggered",
  "policy.changed",
];

describe.each([
  ["memory", () => ":memory:"],
  ["sqlite", () => join(dir, `events-${Math.random()}.db`)],
  ["postgres", () => pgUrl()],
])("subscribe on the %s store", (_kind, store) => {
  it("maps every record kind to its events, in seq order, with the audit ids", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: freshOrg() });
    const seen = collector();
    const subscription = await engine.subscribe(seen.callback);
    expect(subscription.lastSeq).toBe(0);
    const approvalId = await everyKind(engine);
    await seen.waitFor(EVERY_KIND_TYPES.length);
    expect(seen.types()).toEqual(EVERY_KIND_TYPES);
    const records = (await engine.audit()).items;
    expect(seen.events.map((e) => e.id)).toEqual([
      ...records.slice(0, 6).map((r) => r.id),
      records[6]!.id,
      records[6]!.id,
      records[7]!.id,
      records[8]!.id,
    ]);
    const seqs = seen.events.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seen.events[3]!.data).toMatchObject({ resolution: "approved", approvalId, reason: "ok" });
    expect(seen.events[3]!.agentId).toBe("reviewer");
    expect(seen.events[5]!.data).toMatchObject({ trigger: "agent.contained", reason: "runaway" });
    expect(seen.events[6]!.data).toMatchObject({ denialReason: "CIRCUIT_OPEN" });
    expect(seen.events[7]!.data).toMatchObject({ trigger: "CIRCUIT_OPEN" });
    expect(seen.events[1]).toMatchObject({ agentId: agent.id, actionType: "pr.open" });
    expect(subscription.lastSeq).toBe(records.at(-1)!.seq);
    await engine.close();
  });

  it("filters by event type and agent", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: freshOrg() });
    const denials = collector();
    const rogue = collector();
    const all = collector();
    await engine.subscribe(denials.callback, { events: ["action.denied"] });
    await engine.subscribe(rogue.callback, { agentFilter: ["rogue"] });
    await engine.subscribe(all.callback);
    await everyKind(engine);
    await all.waitFor(EVERY_KIND_TYPES.length);
    await denials.waitFor(2);
    await rogue.waitFor(4);
    expect(denials.events.map((e) => e.data.denialReason)).toEqual(["CONDITIONS_DENIED", "CIRCUIT_OPEN"]);
    // contain/release records name the contained agent; its own blocked call gives two events.
    expect(rogue.types()).toEqual([
      "enforcement.triggered",
      "action.denied",
      "enforcement.triggered",
      "enforcement.triggered",
    ]);
    expect(rogue.events.map((e) => e.data.trigger)).toEqual([
      "agent.contained",
      undefined,
      "CIRCUIT_OPEN",
      "agent.released",
    ]);
    expect(new Set(rogue.events.map((e) => e.agentId))).toEqual(new Set(["rogue"]));
    await engine.close();
  });

  it("resumes after a seq with exactly the missed events, in order", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: freshOrg() });
    const first = collector();
    const subscription = await engine.subscribe(first.callback);
    await engine.decide({ agent, actionType: "read.file", args: { n: 1 } });
    await engine.decide({ agent, actionType: "read.file", args: { n: 2 } });
    await first.waitFor(2);
    const resumeAfter = subscription.lastSeq;
    subscription.unsubscribe();
    for (let n = 3; n <= 6; n++) await engine.decide({ agent, actionType: "read.file", args: { n } });
    const missed = (await engine.audit()).items.filter((r) => r.seq > resumeAfter);
    const resumed = collector();
    await engine.subscribe(resumed.callback, { after: resumeAfter });
    await resumed.waitFor(4);
    await engine.decide({ agent, actionType: "read.file", args: { n: 7 } });
    await resumed.waitFor(5);
    expect(resumed.events.slice(0, 4).map((e) => e.id)).toEqual(missed.map((r) => r.id));
    expect(resumed.events.map((e) => e.seq)).toEqual([3, 4, 5, 6, 7]);
    // The unsubscribed callback got nothing more.
    expect(first.events).toHaveLength(2);
    await engine.close();
  });

  it("keeps delivering to others when one subscriber throws or rejects", async () => {
    const engine = await openEngine({ policy, store: store(), orgId: freshOrg() });
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on("warning", onWarning);
    try {
      let thrown = 0;
      await engine.subscribe(() => {
        thrown++;
        throw new Error("subscriber bug");
      });
      await engine.subscribe(async () => {
        throw new Error("async subscriber bug");
      });
      const healthy = collector();
      await engine.subscribe(healthy.callback);
      for (let n = 0; n < 3; n++) await engine.decide({ agent, actionType: "read.file", args: { n } });
      await healthy.waitFor(3);
      await until(
        () => thrown === 3 && warnings.length >= 6,
        () => warnings,
      );
      expect(warnings.filter((w) => w.includes("subscriber bug"))).toHaveLength(6);
    } finally {
      process.off("warning", onWarning);
      await engine.close();
    }
  });
});

describe("events across processes", () => {
  it("a subscriber sees records another engine appends to the same SQLite file", async () => {
    const file = join(dir, "shared.db");
    const listener = await openEngine({ policy, store: file });
    const writer = await openEngine({ policy, store: file });
    const seen = collector();
    await listener.subscribe(seen.callback, { events: ["approval.requested", "approval.resolved"] });
    const held = await writer.decide({ agent, actionType: "pr.merge" });
    await seen.waitFor(1);
    await listener.deny(held.approvalId!, "reviewer", "no");
    await seen.waitFor(2);
    expect(seen.types()).toEqual(["approval.requested", "approval.resolved"]);
    expect(seen.events[0]!.data.approvalId).toBe(held.approvalId);
    expect(seen.events[1]!.data).toMatchObject({ resolution: "denied", reason: "no" });
    await writer.close();
    await listener.close();
  });

  it("a subscriber sees records another engine appends to the same PostgreSQL org", async () => {
    const url = pgUrl();
    const orgId = freshOrg();
    const listener = await openEngine({ policy, store: url, orgId });
    const writer = await openEngine({ policy, store: url, orgId });
    const seen = collector();
    await listener.subscribe(seen.callback);
    await writer.decide({ agent, actionType: "read.file" });
    await seen.waitFor(1);
    expect(seen.types()).toEqual(["action.executed"]);
    await writer.close();
    await listener.close();
  });
});

describe("an unreadable record", () => {
  it("stops the subscription at that seq with one warning, and never skips it", async () => {
    const file = join(dir, "corrupt.db");
    const engine = await openEngine({ policy, store: file });
    for (let n = 1; n <= 3; n++) await engine.decide({ agent, actionType: "read.file", args: { n } });
    const db = new DatabaseSync(file);
    db.exec("UPDATE audit_events SET record = 'not json' WHERE seq = 2");
    db.close();
    const warnings: string[] = [];
    const onWarning = (warning: Error) => warnings.push(warning.message);
    process.on("warning", onWarning);
    try {
      const stuck = collector();
      const subscription = await engine.subscribe(stuck.callback, { after: 0 });
      await stuck.waitFor(1);
      await until(
        () => warnings.length >= 1,
        () => warnings,
      );
      const healthy = collector();
      await engine.subscribe(healthy.callback);
      for (let n = 4; n <= 6; n++) {
        await engine.decide({ agent, actionType: "read.file", args: { n } });
        await healthy.waitFor(n - 3);
      }
      expect(stuck.events.map((e) => e.seq)).toEqual([1]);
      expect(subscription.lastSeq).toBe(1);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/reading the audit record after seq 1 failed/);
    } finally {
      process.off("warning", onWarning);
      await engine.close();
    }
  });
});

describe("subscribe options", () => {
  it("rejects bad options with an EngineError naming the field", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    await expect(engine.subscribe(() => {}, { events: ["action.nope" as never] })).rejects.toMatchObject({
      code: "INVALID_REQUEST",
      message: expect.stringContaining("unknown event type"),
    });
    await expect(engine.subscribe(() => {}, { agentFilter: [] })).rejects.toThrow(/agentFilter/);
    await expect(engine.subscribe(() => {}, { agentFilter: 7 as never })).rejects.toMatchObject({
      code: "INVALID_REQUEST",
      message: expect.stringContaining("agentFilter"),
    });
    await expect(engine.subscribe(() => {}, { after: -1 })).rejects.toThrow(/after/);
    await expect(engine.subscribe("nope" as never)).rejects.toThrow(/callback/);
    await engine.close();
    await expect(engine.subscribe(() => {})).rejects.toMatchObject({ code: "ENGINE_CLOSED" });
  });

  it("shares frozen events: one subscriber cannot change what another sees", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const errors: unknown[] = [];
    await engine.subscribe((event) => {
      try {
        (event as { type: string }).type = "action.denied";
      } catch (error) {
        errors.push(error);
      }
    });
    const other = collector();
    await engine.subscribe(other.callback);
    await engine.decide({ agent, actionType: "read.file" });
    await other.waitFor(1);
    expect(errors[0]).toBeInstanceOf(TypeError);
    expect(other.types()).toEqual(["action.executed"]);
    expect(Object.isFrozen(other.events[0]!.data)).toBe(true);
    await engine.close();
  });

  it("accepts the reserved types, which never fire yet", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const reserved = collector();
    const all = collector();
    await engine.subscribe(reserved.callback, {
      events: ["delegation.expired", "delegation.revoked", "anomaly.detected"],
    });
    await engine.subscribe(all.callback);
    await everyKind(engine);
    await all.waitFor(EVERY_KIND_TYPES.length);
    expect(reserved.events).toEqual([]);
    await engine.close();
  });
});
