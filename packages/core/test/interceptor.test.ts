import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  AssemblyTimeoutError,
  type InterceptOptions,
  initAssembly,
} from "../src/index.js";
import { capturingAdapter } from "./capturing-adapter.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read_*", effect: "allow" },
    { name: "merges-need-review", action: "merge_pr", effect: "require_approval" },
  ],
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

async function setup(extra: Record<string, unknown> = {}) {
  const adapter = capturingAdapter();
  context = await initAssembly({
    agent: { id: "bot" },
    root: fixtureRoot,
    policy,
    store: ":memory:",
    adapters: [adapter],
    ...extra,
  });
  return { adapter, interceptor: adapter.interceptor!, context };
}

async function waitForPending(ctx: AssemblyContext) {
  for (;;) {
    const [pending] = await ctx.listApprovals({ state: "pending" });
    if (pending) return pending;
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("interceptor", () => {
  it("holds a call until an operator approves it, then runs it exactly once", async () => {
    const { interceptor, context: ctx } = await setup();
    let runs = 0;
    const held = interceptor.intercept(
      { framework: "test", toolName: "merge_pr", args: { pr: 7 } },
      () => ++runs,
    );
    const pending = await waitForPending(ctx);
    expect(pending).toMatchObject({
      agentId: "bot",
      actionType: "merge_pr",
      state: "pending",
      policyName: "merges-need-review",
    });
    expect(pending.id.length).toBeGreaterThanOrEqual(22); // >= 128 bits, base64url
    expect(runs).toBe(0);
    await ctx.approve(pending.id, "operator:alice");
    await expect(held).resolves.toBe(1);
    expect(runs).toBe(1);
    const statuses = (await ctx.audit()).items.map((e) => (e as { status: string }).status);
    expect(statuses).toContain("requested");
    expect(statuses.at(-1)).toBe("executed");
  });

  it("tells the caller a reviewer denied the call, with the reviewer's reason, and never runs it", async () => {
    const { interceptor, context: ctx } = await setup();
    let runs = 0;
    const held = interceptor.intercept({ framework: "test", toolName: "merge_pr", args: {} }, () => ++runs);
    const pending = await waitForPending(ctx);
    await ctx.deny(pending.id, "operator:bob", "not on a Friday");
    const error = await held.catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyDeniedError);
    expect(error.reason).toBe("DENIED_BY_REVIEWER");
    expect(error.message).toContain("not on a Friday");
    expect(runs).toBe(0);
  });

  it("gate() gives up with AssemblyTimeoutError when nobody decides in time", async () => {
    const { context: ctx } = await setup();
    const error = await ctx.gate("merge_pr", { gatePollTimeoutMs: 50 }).catch((e) => e);
    expect(error).toBeInstanceOf(AssemblyTimeoutError);
    const [pending] = await ctx.listApprovals({ state: "pending" });
    expect(error.approvalId).toBe(pending?.id);
  });

  it("never lets the requesting agent approve its own call", async () => {
    const { interceptor, context: ctx } = await setup();
    const held = interceptor.intercept({ framework: "test", toolName: "merge_pr", args: {} }, () => "ran");
    const pending = await waitForPending(ctx);
    await expect(ctx.approve(pending.id, "bot")).rejects.toMatchObject({ code: "SELF_APPROVAL_FORBIDDEN" });
    await ctx.deny(pending.id, "operator:alice");
    await held.catch(() => {});
  });

  it("runs an allowed call once per eventId, however often it is re-run", async () => {
    const { interceptor, context: ctx } = await setup();
    let runs = 0;
    const options: InterceptOptions = { eventId: "thread-1:call-1" };
    const call = { framework: "test", toolName: "read_file", args: { path: "a" } };
    expect(await interceptor.intercept(call, () => ++runs, options)).toBe(1);
    expect(await interceptor.intercept(call, () => ++runs, options)).toBe(1);
    expect(runs).toBe(1);
    expect((await ctx.audit()).items).toHaveLength(1);
  });

  it("remembers the last 10 000 executed eventIds, forgetting the oldest first", async () => {
    const { interceptor } = await setup();
    const call = { framework: "test", toolName: "read_file", args: { path: "a" } };
    const runs = new Map<string, number>();
    const run = (eventId: string) =>
      interceptor.intercept(call, () => runs.set(eventId, (runs.get(eventId) ?? 0) + 1), { eventId });
    // 10 001 keyed calls: the memo is full after 10 000, and the 10 001st evicts the first key.
    for (let i = 0; i <= 10_000; i++) await run(`k${i}`);
    await run("k1");
    await run("k10000");
    expect(runs.get("k1")).toBe(1);
    expect(runs.get("k10000")).toBe(1);
    // The evicted key is decided again (same idempotent decision) and, no longer remembered, runs.
    await run("k0");
    expect(runs.get("k0")).toBe(2);
    // Re-adding k0 evicted k1, the next oldest (and re-adding k1 evicts k2); k3 is still remembered.
    await run("k1");
    expect(runs.get("k1")).toBe(2);
    await run("k3");
    expect(runs.get("k3")).toBe(1);
  });

  it("calls onHold before waiting, and lets it suspend the caller by throwing", async () => {
    const { interceptor, context: ctx } = await setup();
    const suspended = new Error("interrupt");
    const seen: string[] = [];
    const error = await interceptor
      .intercept({ framework: "test", toolName: "merge_pr", args: {} }, () => "ran", {
        onHold(held) {
          seen.push(held.approvalId);
          throw suspended;
        },
      })
      .catch((e) => e);
    expect(error).toBe(suspended);
    const [pending] = await ctx.listApprovals({ state: "pending" });
    expect(seen).toEqual([pending?.id]);
  });

  it("fails closed when the gate cannot record a decision, and runs with a warning only when failureMode is open", async () => {
    // A store that refuses every write (as a full disk or a revoked permission would): the audit
    // record cannot be written, so the gate cannot decide.
    const breakStore = (file: string) => {
      const raw = new DatabaseSync(file);
      raw.exec(
        "CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk says no'); END",
      );
      raw.close();
    };
    const call = { framework: "test", toolName: "read_file", args: { path: "a" } };
    {
      const store = join(mkdtempSync(join(tmpdir(), "aa-core-")), "a.db");
      const { interceptor } = await setup({ store });
      breakStore(store);
      let runs = 0;
      const error = await interceptor.intercept(call, () => ++runs).catch((e) => e);
      expect(error).toBeInstanceOf(AssemblyDeniedError);
      expect(error.reason).toBe("GATE_UNAVAILABLE");
      expect(error.message).toMatch(/gate could not decide/);
      expect(runs).toBe(0);
      await context?.shutdown();
      context = undefined;
    }
    const store = join(mkdtempSync(join(tmpdir(), "aa-core-")), "b.db");
    const { interceptor } = await setup({ store, failureMode: "open" });
    breakStore(store);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on("warning", onWarning);
    try {
      expect(await interceptor.intercept(call, () => "ran anyway")).toBe("ran anyway");
      await new Promise((r) => setImmediate(r));
      expect(warnings.some((w) => w.includes('failureMode is "open"'))).toBe(true);
    } finally {
      process.off("warning", onWarning);
    }
  });

  it("a backstop adapter stands aside inside an already governed call, and still decides direct calls", async () => {
    const outer = capturingAdapter("outer");
    const backstop = capturingAdapter("backstop", 99);
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: ":memory:",
      adapters: [outer, backstop],
    });
    const ctx = context;
    // An MCP tool wrapped as a LangChain tool: the outer call is governed, the inner one is the same action.
    const result = await outer.interceptor!.intercept(
      { framework: "outer", toolName: "read_report", args: {} },
      async () => {
        await new Promise((r) => setImmediate(r));
        return backstop.interceptor!.intercept(
          { framework: "backstop", toolName: "read_report", args: {} },
          () => "inner ran",
        );
      },
    );
    expect(result).toBe("inner ran");
    expect((await ctx.audit()).items.map((e) => [e.framework, e.action_type])).toEqual([
      ["outer", "read_report"],
    ]);
    // Called directly, the backstop decides (and denies what no policy allows).
    expect(
      await backstop.interceptor!.intercept(
        { framework: "backstop", toolName: "read_direct", args: {} },
        () => "direct",
      ),
    ).toBe("direct");
    await expect(
      backstop.interceptor!.intercept({ framework: "backstop", toolName: "drop_db", args: {} }, () => "x"),
    ).rejects.toBeInstanceOf(AssemblyDeniedError);
    expect((await ctx.audit()).items.map((e) => e.action_type)).toEqual([
      "read_report",
      "read_direct",
      "drop_db",
    ]);
  });

  it("a backstop decides again for work that outlives the governed call that started it", async () => {
    const outer = capturingAdapter("outer");
    const backstop = capturingAdapter("backstop", 99);
    context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: ":memory:",
      adapters: [outer, backstop],
    });
    let later: Promise<unknown> | undefined;
    await outer.interceptor!.intercept({ framework: "outer", toolName: "read_setup", args: {} }, () => {
      // A timer started inside the tool fires after it returned, in the async context it inherited.
      later = new Promise((resolve) => setTimeout(resolve, 20)).then(() =>
        backstop.interceptor!.intercept(
          { framework: "backstop", toolName: "drop_db", args: {} },
          () => "ran",
        ),
      );
      later.catch(() => {});
    });
    await expect(later!).rejects.toBeInstanceOf(AssemblyDeniedError);
    expect((await context.audit()).items.map((e) => e.action_type)).toEqual(["read_setup", "drop_db"]);
  });
});
