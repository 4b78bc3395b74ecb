/**
 * Decision traces through the governance client, embedded on SQLite: every decision inside
 * `assembly.trace()` (the interceptor's tool calls, `execute`/`gate`, calls inside `child.run()`)
 * records the trace id and step; nested traces are child spans; concurrent traces do not leak
 * into each other; `trace.llm()` holds and reconciles tokens/cost against the agent's budget and
 * the trace's own; outside a trace records have no trace id, as before.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  type AssemblyContext,
  AssemblyDeniedError,
  AssemblyError,
  type AuditEvent,
  type Interceptor,
  initAssembly,
  type TraceSummary,
  usageOfResponse,
} from "../src/index.js";
import { capturingAdapter } from "./capturing-adapter.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-trace-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "reads", action: "read.*", effect: "allow" },
    // Deploys only from the release step of a trace: policies read the step as metadata.
    {
      name: "deploys-in-release-step",
      action: "deploy",
      effect: "allow",
      when: [{ field: "metadata.aa_trace.step", op: "eq", value: "release" }],
    },
  ],
  budgets: {
    tokens: { limit: 1000, window: "1d" },
    cost: { limit: 1, window: "1d" },
  },
};

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown().catch(() => {});
  context = undefined;
});

async function setup(): Promise<{ assembly: AssemblyContext; interceptor: Interceptor }> {
  const adapter = capturingAdapter();
  context = await initAssembly({
    agent: { id: "planner" },
    root: fixtureRoot,
    policy,
    store: join(dir, `trace-${n++}.db`),
    adapters: [adapter],
  });
  return { assembly: context, interceptor: adapter.interceptor! };
}

/** A tool call as an adapter makes it. */
const toolCall = (interceptor: Interceptor, toolName: string, args: unknown = {}) =>
  interceptor.intercept({ framework: "test", toolName, args }, () => `${toolName} ran`);

async function records(assembly: AssemblyContext): Promise<AuditEvent[]> {
  return (await assembly.audit({ limit: 1000 })).items.filter((r) => r.kind === "action");
}

describe("decision traces", () => {
  it("outside a trace, decisions record no trace id and the metadata they were given, as before", async () => {
    const { assembly, interceptor } = await setup();
    await assembly.execute("read.file", { metadata: { ticket: "T-1" } });
    await toolCall(interceptor, "read.web");
    const all = await records(assembly);
    expect(all.map((r) => [r.action_type, r.trace_id, r.metadata])).toEqual([
      ["read.file", null, { ticket: "T-1" }],
      ["read.web", null, null],
    ]);
  });

  it("tool calls, execute and gate inside a trace carry its W3C id and step; the summary lists them", async () => {
    const { assembly, interceptor } = await setup();
    let summary: TraceSummary | undefined;
    const value = await assembly.trace(
      "release v2",
      async (trace) => {
        expect(trace.id).toMatch(/^[0-9a-f]{32}$/);
        expect(trace.spanId).toMatch(/^[0-9a-f]{16}$/);
        expect(trace.traceparent).toBe(`00-${trace.id}-${trace.spanId}-01`);
        await toolCall(interceptor, "read.changelog");
        await trace.step("checks", async () => {
          await sleep(1); // across a timer
          await assembly.execute("read.ci", { metadata: { ticket: "T-9" } });
          // A deploy outside the release step is denied by the policy reading the step.
          await expect(assembly.gate("deploy")).rejects.toBeInstanceOf(AssemblyDeniedError);
        });
        trace.step("release");
        await assembly.gate("deploy");
        return trace.id;
      },
      { onEnd: (s) => (summary = s) },
    );
    const all = await records(assembly);
    expect(all.map((r) => [r.action_type, r.status, r.trace_id, r.metadata])).toEqual([
      ["read.changelog", "executed", value, { aa_trace: { name: "release v2", span_id: summary!.spanId } }],
      [
        "read.ci",
        "executed",
        value,
        { ticket: "T-9", aa_trace: { name: "release v2", span_id: summary!.spanId, step: "checks" } },
      ],
      [
        "deploy",
        "denied",
        value,
        { aa_trace: { name: "release v2", span_id: summary!.spanId, step: "checks" } },
      ],
      [
        "deploy",
        "executed",
        value,
        { aa_trace: { name: "release v2", span_id: summary!.spanId, step: "release" } },
      ],
    ]);
    expect(summary).toMatchObject({
      traceId: value,
      parentSpanId: null,
      name: "release v2",
      status: "ok",
      steps: [
        { name: "checks", parent: null, status: "ok" },
        { name: "release", parent: null, status: "ok" },
      ],
      toolCalls: [
        {
          actionType: "read.changelog",
          tool: "read.changelog",
          step: null,
          status: "executed",
          agentId: "planner",
        },
        { actionType: "read.ci", tool: null, step: "checks", status: "executed" },
        {
          actionType: "deploy",
          step: "checks",
          status: "denied",
          denialReason: "CONDITIONS_DENIED",
        },
        { actionType: "deploy", step: "release", status: "executed", policyName: "deploys-in-release-step" },
      ],
      llmCalls: [],
      children: [],
    });
    expect(summary!.toolCalls.map((c) => c.auditEventId)).toEqual(all.map((r) => r.id));
    expect(summary!.endedAt).not.toBeNull();
  });

  it("a failing trace ends with status error and rethrows; steps that threw are marked", async () => {
    const { assembly } = await setup();
    let summary: TraceSummary | undefined;
    const error = await assembly
      .trace(
        "doomed",
        async (trace) => {
          await trace.step("fetch", async () => {
            throw new Error("network down");
          });
        },
        { onEnd: (s) => (summary = s) },
      )
      .catch((e: unknown) => e);
    expect((error as Error).message).toBe("network down");
    expect(summary).toMatchObject({ status: "error", steps: [{ name: "fetch", status: "error" }] });
  });

  it("nested traces are child spans of the same trace; steps nest", async () => {
    const { assembly, interceptor } = await setup();
    let outer: TraceSummary | undefined;
    await assembly.trace(
      "agent run",
      async (trace) => {
        await trace.step("research", async () => {
          await assembly.trace("sub-task", async (inner) => {
            expect(inner.id).toBe(trace.id);
            await toolCall(interceptor, "read.paper");
            await inner.step("summarise", () => assembly.execute("read.notes"));
          });
          await trace.step("verify", () => toolCall(interceptor, "read.source"));
        });
      },
      { onEnd: (s) => (outer = s) },
    );
    const all = await records(assembly);
    const child = outer!.children[0]!;
    expect(new Set(all.map((r) => r.trace_id))).toEqual(new Set([outer!.traceId]));
    expect(child).toMatchObject({ name: "sub-task", traceId: outer!.traceId, parentSpanId: outer!.spanId });
    expect(child.toolCalls.map((c) => [c.actionType, c.step])).toEqual([
      ["read.paper", null],
      ["read.notes", "summarise"],
    ]);
    expect(outer!.toolCalls.map((c) => [c.actionType, c.step])).toEqual([["read.source", "verify"]]);
    expect(outer!.steps.map((s) => [s.name, s.parent])).toEqual([
      ["research", null],
      ["verify", "research"],
    ]);
    expect(all.map((r) => (r.metadata?.aa_trace as { span_id?: string } | undefined)?.span_id)).toEqual([
      child.spanId,
      child.spanId,
      outer!.spanId,
    ]);
  });

  it("two traces in Promise.all with interleaved awaits do not leak ids into each other", async () => {
    const { assembly, interceptor } = await setup();
    const ids: Record<string, string> = {};
    const run = (name: string) =>
      assembly.trace(name, async (trace) => {
        ids[name] = trace.id;
        for (let i = 0; i < 5; i++) {
          await sleep(i % 2); // interleave the two traces
          await toolCall(interceptor, "read.item", { trace: name, i });
          await trace.step(`s${i}`, () => assembly.execute("read.more", { args: { trace: name, i } }));
        }
      });
    await Promise.all([run("a"), run("b")]);
    expect(ids.a).not.toBe(ids.b);
    const all = await records(assembly);
    expect(all).toHaveLength(20);
    for (const record of all) {
      const args = record.args as { trace: string; i: number };
      expect(record.trace_id).toBe(ids[args.trace]);
      if (record.action_type === "read.more") {
        expect((record.metadata?.aa_trace as { step?: string } | undefined)?.step).toBe(`s${args.i}`);
      }
    }
    // And after both: no trace.
    await assembly.execute("read.after");
    expect((await records(assembly)).at(-1)?.trace_id).toBeNull();
  });

  it("calls inside a delegated child's run() carry the trace id and are attributed to the child", async () => {
    const { assembly, interceptor } = await setup();
    const summary = await assembly.trace("delegating", async (trace) => {
      await assembly.delegate("reader", { capabilities: ["read.*"], ttl: 600 }, (child) =>
        child.run(async () => {
          await toolCall(interceptor, "read.inbox");
          await child.execute("read.calendar");
        }),
      );
      return trace.summary();
    });
    const all = await records(assembly);
    expect(all.map((r) => [r.action_type, r.agent, r.trace_id])).toEqual([
      ["read.inbox", "planner/reader", summary.traceId],
      ["read.calendar", "planner/reader", summary.traceId],
    ]);
    expect(summary.toolCalls.map((c) => c.agentId)).toEqual(["planner/reader", "planner/reader"]);
  });

  it("continues an incoming trace from traceId or traceparent; refuses malformed ones before running", async () => {
    const { assembly } = await setup();
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const seen = await assembly.trace(
      "handle request",
      async (trace) => {
        await assembly.execute("read.x");
        return trace.summary();
      },
      { traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    );
    expect(seen).toMatchObject({ traceId, parentSpanId: "00f067aa0ba902b7" });
    expect((await records(assembly))[0]!.trace_id).toBe(traceId);
    expect(await assembly.trace("continued", (t) => t.id, { traceId })).toBe(traceId);

    let ran = false;
    for (const [options, option] of [
      [{ traceId: "4BF92F3577B34DA6A3CE929D0E0E4736" }, "traceId"],
      [{ traceId: "0".repeat(32) }, "traceId"],
      [{ traceparent: "00-abc-def-01" }, "traceparent"],
      [{ traceparent: `00-${traceId}-${"0".repeat(16)}-01` }, "traceparent"],
      [{ budget: { tokens: -1 } }, "options.budget"],
    ] as const) {
      const error = await assembly
        .trace(
          "bad",
          () => {
            ran = true;
          },
          options,
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AssemblyError);
      expect(error).toMatchObject({ code: "INVALID_REQUEST", details: { option } });
    }
    await expect(assembly.trace("", () => undefined)).rejects.toMatchObject({ code: "INVALID_REQUEST" });
    expect(ran).toBe(false);
  });

  it("trace.llm holds the estimate against the agent's budget, reconciles actual usage, and refuses past it", async () => {
    const { assembly } = await setup();
    let calls = 0;
    const summary = await assembly.trace("chat", async (trace) => {
      // Usage read from a LangChain-style response (usage_metadata), cost from the estimate.
      const answer = await trace.llm({ model: "m-1", estimate: { tokens: 500, cost: 0.2 } }, async () => {
        calls++;
        expect((await assembly.whoami()).budgets.tokens).toMatchObject({ reserved: 500 });
        return { content: "hi", usage_metadata: { input_tokens: 120, output_tokens: 30, total_tokens: 150 } };
      });
      expect(answer.content).toBe("hi");
      // Reported usage wins over the response.
      await trace.step("draft", () =>
        trace.llm({ model: "m-2", estimate: { tokens: 300, cost: 0.1 } }, (call) => {
          calls++;
          call.report({ tokens: 250, cost: 0.05 });
          return { usage: { total_tokens: 999 } };
        }),
      );
      // 150 + 250 used of 1000: 700 more does not fit, and the call does not run.
      const refused = await trace
        .llm({ model: "m-1", estimate: { tokens: 700 } }, () => {
          calls++;
        })
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(AssemblyError);
      expect(refused).toMatchObject({
        code: "BUDGET_EXCEEDED",
        details: { scope: "agent", kind: "tokens", limit: 1000, used: 400, requested: 700 },
      });
      return trace.summary();
    });
    expect(calls).toBe(2);
    expect((await assembly.whoami()).budgets.tokens).toMatchObject({ used: 400, reserved: 0 });
    expect(summary.usage).toEqual({ tokens: 400, cost: 0.25 });
    expect(summary.llmCalls).toEqual([
      {
        model: "m-1",
        step: null,
        status: "ok",
        estimate: { tokens: 500, cost: 0.2 },
        usage: { tokens: 150, cost: 0.2 },
        usageSource: "response",
      },
      {
        model: "m-2",
        step: "draft",
        status: "ok",
        estimate: { tokens: 300, cost: 0.1 },
        usage: { tokens: 250, cost: 0.05 },
        usageSource: "reported",
      },
      {
        model: "m-1",
        step: null,
        status: "denied",
        estimate: { tokens: 700, cost: 0 },
        usage: null,
        usageSource: null,
        denialReason: "BUDGET_EXCEEDED",
        budgetScope: "agent",
      },
    ]);
  });

  it("a trace budget refuses LLM calls past it, counting nested traces and concurrent calls", async () => {
    const { assembly } = await setup();
    let ran = 0;
    const summary = await assembly.trace(
      "bounded",
      async (trace) => {
        // Three concurrent calls of 40 against a budget of 100: the third is refused before it runs.
        const results = await Promise.allSettled(
          [1, 2, 3].map(() =>
            trace.llm({ model: "m", estimate: { tokens: 40 } }, async () => {
              ran++;
              await sleep(1);
              return { usage: { prompt_tokens: 10, completion_tokens: 20 } };
            }),
          ),
        );
        expect(results.map((r) => r.status)).toEqual(["fulfilled", "fulfilled", "rejected"]);
        const refused = (results[2] as PromiseRejectedResult).reason;
        expect(refused).toMatchObject({
          code: "BUDGET_EXCEEDED",
          details: { scope: "trace", trace: "bounded", kind: "tokens", limit: 100, used: 0, reserved: 80 },
        });
        // Used 60 now; a nested trace's call of 50 does not fit the outer budget.
        const nested = await assembly
          .trace("inner", (inner) => inner.llm({ model: "m", estimate: { tokens: 50 } }, () => ran++))
          .catch((e: unknown) => e);
        expect(nested).toMatchObject({ code: "BUDGET_EXCEEDED", details: { trace: "bounded", used: 60 } });
        await assembly.trace("inner ok", (inner) =>
          inner.llm({ model: "m", estimate: { tokens: 30 } }, (call) => {
            ran++;
            call.report({ tokens: 25 });
          }),
        );
        return trace.summary();
      },
      { budget: { tokens: 100 } },
    );
    expect(ran).toBe(3);
    expect(summary.usage).toEqual({ tokens: 85, cost: 0 });
    expect(summary.budget).toEqual({ tokens: 100 });
    expect(summary.children.map((c) => [c.name, c.llmCalls.map((l) => l.status)])).toEqual([
      ["inner", ["denied"]],
      ["inner ok", ["ok"]],
    ]);
  });

  it("an LLM call that throws still counts (reported usage, else the estimate) and rethrows", async () => {
    const { assembly } = await setup();
    const summary = await assembly.trace("flaky", async (trace) => {
      await expect(
        trace.llm({ model: "m", estimate: { tokens: 100, cost: 0.01 } }, () => {
          throw new Error("429 from provider");
        }),
      ).rejects.toThrow("429 from provider");
      return trace.summary();
    });
    expect(summary.llmCalls[0]).toMatchObject({
      status: "error",
      usage: { tokens: 100, cost: 0.01 },
      usageSource: "estimate",
    });
    expect((await assembly.whoami()).budgets.tokens).toMatchObject({ used: 100, reserved: 0 });
  });

  it("a delegated child's own trace counts its LLM calls against the child's budget, not the parent's", async () => {
    const { assembly } = await setup();
    await assembly.delegate("writer", { capabilities: ["read.*"], ttl: 600 }, async (child) => {
      await child.trace("child work", (trace) =>
        trace.llm({ model: "m", estimate: { tokens: 100 } }, (call) => call.report({ tokens: 60 })),
      );
      expect((await child.whoami()).budgets.tokens).toMatchObject({ used: 60 });
    });
    expect((await assembly.whoami()).budgets.tokens).toMatchObject({ used: 0 });
  });

  it("a trace's methods refuse to run after it ended", async () => {
    const { assembly } = await setup();
    const trace = await assembly.trace("short", (t) => t);
    expect(() => trace.step("late")).toThrow(expect.objectContaining({ code: "TRACE_ENDED" }));
    await expect(trace.llm({ model: "m", estimate: {} }, () => 1)).rejects.toMatchObject({
      code: "TRACE_ENDED",
    });
  });
});

describe("usageOfResponse", () => {
  it("reads the usage fields of the common response shapes, tokens only", () => {
    expect(usageOfResponse({ usage_metadata: { total_tokens: 7 } })).toEqual({ tokens: 7 });
    expect(usageOfResponse({ usage: { prompt_tokens: 3, completion_tokens: 4 } })).toEqual({ tokens: 7 });
    expect(usageOfResponse({ usage: { input_tokens: 5, output_tokens: 1 } })).toEqual({ tokens: 6 });
    expect(usageOfResponse({ usage: { inputTokens: 2, outputTokens: 2 } })).toEqual({ tokens: 4 });
    expect(usageOfResponse({ totalUsage: { totalTokens: 9 } })).toEqual({ tokens: 9 });
    expect(usageOfResponse({ usage: { total_tokens: "12" } })).toBeUndefined();
    expect(usageOfResponse("text")).toBeUndefined();
    expect(usageOfResponse(null)).toBeUndefined();
  });
});
