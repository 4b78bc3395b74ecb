import { afterEach, describe, expect, it, vi } from "vitest";
import { canonicalJson } from "../src/chain/canonical-json.js";
import { encodeRecord, sha256Hex } from "../src/chain/record.js";
import { openEngine } from "../src/index.js";
import { MemoryStore, SEAL_DELAY_MS } from "../src/store/memory.js";
import type { PendingAppend } from "../src/store/types.js";
import { actionRecordFields, agent, policy } from "./helpers.js";

// The memory store seals plain records after decide() resolves; these tests pin what that may not change.
describe("memory store: deferred sealing", () => {
  it("records the call as it was decided, even if the caller mutates its inputs afterwards", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const args = { amount: 50, tags: ["a"], nested: { note: "before" } };
    const metadata: Record<string, unknown> = { pr_size: 10, labels: ["x"] };
    const delegationChain = ["root", agent.id];
    const paid = await engine.decide({ agent, actionType: "pay", args, delegationChain });
    const opened = await engine.decide({ agent, actionType: "pr.open", metadata });
    args.amount = 999;
    args.tags.push("b");
    args.nested.note = "after";
    (metadata.labels as string[]).push("y");
    metadata.pr_size = 1000;
    delegationChain.push("intruder");

    const { items } = await engine.audit();
    expect(items.map((e) => e.id)).toEqual([paid.auditEventId, opened.auditEventId]);
    expect(items[0]!.args).toEqual({ amount: 50, tags: ["a"], nested: { note: "before" } });
    expect(items[0]!.delegation).toEqual(["root", agent.id]);
    expect(items[0]!.conditions).toEqual([expect.objectContaining({ field: "args.amount", actual: 50 })]);
    expect(items[1]!.metadata).toEqual({ pr_size: 10, labels: ["x"] });
    expect(items[1]!.conditions).toEqual([
      expect.objectContaining({ field: "metadata.pr_size", actual: 10 }),
    ]);
    expect(await engine.verify()).toEqual({ chainValid: true, checked: 2, firstBrokenAtRowId: null });
    await engine.close();
  });

  it("encodes snapshotted values canonically (sorted keys, JSON numbers and strings)", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const args = {
      text: 'é \u2028 "q"',
      big: 1e21,
      small: 1.5e-7,
      list: [1.5, "x", null, true, { z: 1, a: 2 }],
    };
    const decided = await engine.decide({ agent, actionType: "read.file", args });
    args.list.length = 0;
    const [event] = (await engine.audit()).items;
    expect(event!.id).toBe(decided.auditEventId);
    expect(event!.args).toEqual({
      text: 'é \u2028 "q"',
      big: 1e21,
      small: 1.5e-7,
      list: [1.5, "x", null, true, { a: 2, z: 1 }],
    });
    expect(Object.keys(event!.args as object)).toEqual(["big", "list", "small", "text"]);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 1 });
    await engine.close();
  });

  it("records each call's own args and metadata when consecutive calls repeat or alternate them", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const metadataA = { versions: { core: "1.0.0" }, runName: "read" };
    const metadataB = { runName: "read", versions: { core: "2.0.0" } };
    const calls = [
      { args: { path: "/a" }, metadata: metadataA },
      { args: { path: "/a" }, metadata: metadataA },
      { args: { path: "/b" }, metadata: metadataA },
      { args: { path: "/b" }, metadata: metadataB },
      { args: { path: "/a" }, metadata: metadataA },
      // The same object mutated between calls: the second record must show the new value.
      { args: { path: "/a" }, metadata: metadataA, mutate: () => (metadataA.versions.core = "3.0.0") },
    ];
    const expected: { args: unknown; metadata: unknown }[] = [];
    for (const call of calls) {
      call.mutate?.();
      await engine.decide({ agent, actionType: "read.file", args: call.args, metadata: call.metadata });
      expected.push(JSON.parse(JSON.stringify({ args: call.args, metadata: call.metadata })));
    }
    const { items } = await engine.audit();
    expect(items.map((e) => ({ args: e.args, metadata: e.metadata }))).toEqual(expected);
    expect(items.map((e) => e.args_hash)).toEqual(
      expected.map((call) => `sha256:${sha256Hex(canonicalJson(call.args))}`),
    );
    expect(await engine.verify()).toEqual({
      chainValid: true,
      checked: calls.length,
      firstBrokenAtRowId: null,
    });
    await engine.close();
  });

  it("snapshots object-valued condition operands taken from the caller's arguments", async () => {
    const { compilePolicy, parsePolicy } = await import("@aa/policy");
    const listPolicy = compilePolicy(
      parsePolicy(
        `version: 1
default: deny
policies:
  - name: tagged
    action: tag
    effect: allow
    when: [ { field: args.tags, op: contains, value: ok } ]
`,
        { source: "test" },
      ),
    );
    const engine = await openEngine({ policy: listPolicy, store: ":memory:" });
    const tags = ["ok"];
    const decided = await engine.decide({ agent, actionType: "tag", args: { tags } });
    expect(decided.status).toBe("executed");
    tags.push("changed");
    const [event] = (await engine.audit()).items;
    expect(event!.args).toEqual({ tags: ["ok"] });
    expect(event!.conditions).toEqual([expect.objectContaining({ field: "args.tags", actual: ["ok"] })]);
    await engine.close();
  });

  it("keeps decision order and dense seq across deferred records and approvals", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++)
      ids.push(
        (await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: i } })).auditEventId,
      );
    const held = await engine.decide({ agent, actionType: "pr.merge" });
    ids.push(held.auditEventId);
    // More than one batch of deferred records, then an approval decision that appends directly.
    for (let i = 0; i < 1200; i++)
      ids.push((await engine.decide({ agent, actionType: "read.file", args: { i } })).auditEventId);
    await engine.approve(held.approvalId!, "reviewer");
    ids.push((await engine.decide({ agent, actionType: "rm.rf" })).auditEventId);

    const seen: { id: string; seq: number; kind: string }[] = [];
    let cursor: string | undefined;
    do {
      const page = await engine.audit({ limit: 1000, ...(cursor ? { cursor } : {}) });
      seen.push(...page.items.map((e) => ({ id: e.id, seq: e.seq, kind: e.kind })));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_e, i) => i + 1));
    const actions = seen.filter((e) => e.kind === "action").map((e) => e.id);
    expect(actions).toEqual(ids);
    expect(seen.findIndex((e) => e.kind === "approval.approved")).toBe(ids.length - 1);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: ids.length + 1 });
    await engine.close();
  });

  it("exports the records decided just before the export", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 1 } });
    await engine.decide({ agent, actionType: "pr.open", metadata: { pr_size: 2 } });
    const exported: string[] = [];
    const { Writable } = await import("node:stream");
    const sink = new Writable({
      write(chunk, _encoding, done) {
        exported.push(String(chunk));
        done();
      },
    });
    const counts = await engine.exportAudit(sink);
    expect(counts.records).toBe(2);
    expect(exported.join("")).toContain('"pr_size":2');
    await engine.close();
  });
});

describe("memory store: when pending records are sealed", () => {
  const org = "org-seal";
  const item = (n: number): PendingAppend => {
    const fields = actionRecordFields({
      org,
      time: new Date(0).toISOString(),
      actionType: "read.file",
      args: { n },
      policyName: "reads",
    });
    return { fields, encoded: encodeRecord(fields) };
  };

  afterEach(() => {
    vi.useRealTimers();
  });

  it("seals records appended over several event-loop turns as one batch, SEAL_DELAY_MS after the first", async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate"] });
    const store = new MemoryStore();
    const built: number[] = [];
    const append = (n: number) =>
      store.appendDeferred(org, () => {
        built.push(n);
        return item(n);
      });
    expect(append(1)).toBe(1);
    vi.advanceTimersByTime(SEAL_DELAY_MS - 1); // turns of the loop (an I/O-bound tool call each)
    expect(append(2)).toBe(2);
    vi.advanceTimersByTime(0);
    expect(built).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(built).toEqual([1, 2]);
    expect(store.unsafeRows(org).map((e) => e.seq)).toEqual([1, 2]);
    // The next record starts a new delay.
    expect(append(3)).toBe(3);
    vi.advanceTimersByTime(SEAL_DELAY_MS - 1);
    expect(built).toEqual([1, 2]);
    vi.advanceTimersByTime(1);
    expect(built).toEqual([1, 2, 3]);
    store.close();
  });

  it("seals at once for a reader, and on close without leaving the timer behind", () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setImmediate"] });
    const store = new MemoryStore();
    store.appendDeferred(org, () => item(1));
    expect(store.head(org)).toMatchObject({ seq: 1 });
    store.appendDeferred(org, () => item(2));
    store.close();
    expect(vi.getTimerCount()).toBe(0);
    expect(store.unsafeRows(org).map((e) => e.seq)).toEqual([1, 2]);
  });
});
