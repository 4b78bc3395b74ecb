/**
 * A LangChain agent inside a decision trace: every tool call the real agent makes carries the
 * trace id and the step it ran in, two agents traced concurrently do not leak ids into each other,
 * and an LLM call through `trace.llm()` is counted with the usage the LangChain message reports.
 * Real `createAgent`, real tools, a scripted model, the embedded gate on SQLite.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AssemblyContext, initAssembly, type TraceSummary } from "@aa/core";
import { AIMessage } from "@langchain/core/messages";
import { tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { afterAll, afterEach, expect, it } from "vitest";
import { z } from "zod";
import { langchainAdapter } from "../src/index.js";
import { askTools, auditRecords, ScriptedChatModel, TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-langchain-trace-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function setup(): Promise<AssemblyContext> {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "payments-bot" },
    policy: { ...TEST_POLICY, budgets: { tokens: { limit: 200, window: "1d" } } },
    store: join(dir, `trace-${n++}.db`),
    adapters: [langchainAdapter],
    root: ROOT,
  });
  return assembly;
}

const tools = () => [
  tool(async ({ account }: { account: string }) => `account ${account}: open`, {
    name: "lookup",
    description: "look up an account",
    schema: z.object({ account: z.string() }),
  }),
  tool(async ({ amount }: { amount: number }) => `sent ${amount}`, {
    name: "transfer",
    description: "transfer money",
    schema: z.object({ amount: z.number() }),
  }),
];

it("a LangChain agent's tool calls inside a trace carry its id and step; outside, none", async () => {
  const assembly = await setup();
  const agentFor = () =>
    createAgent({
      model: new ScriptedChatModel([
        askTools({ name: "lookup", args: { account: "A-1" }, id: "c1" }),
        askTools(
          { name: "transfer", args: { amount: 50 }, id: "c2" },
          { name: "transfer", args: { amount: 500 }, id: "c3" },
        ),
      ]),
      tools: tools(),
    });
  let summary: TraceSummary | undefined;
  await assembly.trace(
    "pay invoice",
    (trace) => trace.step("agent", () => agentFor().invoke({ messages: [{ role: "user", content: "pay" }] })),
    { onEnd: (s) => (summary = s) },
  );
  await agentFor().invoke({ messages: [{ role: "user", content: "pay again" }] });

  const records = (await auditRecords(assembly)).filter((r) => r.kind === "action");
  expect(
    records.map((r) => [r.tool, r.status, r.trace_id, (r.metadata as { aa_trace?: unknown }).aa_trace]),
  ).toEqual([
    [
      "lookup",
      "executed",
      summary!.traceId,
      { name: "pay invoice", span_id: summary!.spanId, step: "agent" },
    ],
    [
      "transfer",
      "executed",
      summary!.traceId,
      { name: "pay invoice", span_id: summary!.spanId, step: "agent" },
    ],
    [
      "transfer",
      "denied",
      summary!.traceId,
      { name: "pay invoice", span_id: summary!.spanId, step: "agent" },
    ],
    ["lookup", "executed", null, undefined],
    ["transfer", "executed", null, undefined],
    ["transfer", "denied", null, undefined],
  ]);
  // The framework's own call id is recorded as before.
  expect(records[0]!.tool_call_id).toBe("c1");
  expect(summary!.toolCalls.map((c) => [c.tool, c.status, c.step])).toEqual([
    ["lookup", "executed", "agent"],
    ["transfer", "executed", "agent"],
    ["transfer", "denied", "agent"],
  ]);
  expect(summary!.toolCalls.map((c) => c.auditEventId)).toEqual(records.slice(0, 3).map((r) => r.id));
});

it("two LangChain agents traced concurrently keep their own trace ids", async () => {
  const assembly = await setup();
  const run = (name: string, account: string) =>
    assembly.trace(name, async (trace) => {
      const agent = createAgent({
        model: new ScriptedChatModel([
          askTools({ name: "lookup", args: { account }, id: `${name}-1` }),
          askTools({ name: "lookup", args: { account: `${account}-2` }, id: `${name}-2` }),
        ]),
        tools: tools(),
      });
      await agent.invoke({ messages: [{ role: "user", content: name }] });
      return trace.id;
    });
  const [a, b] = await Promise.all([run("a", "A"), run("b", "B")]);
  expect(a).not.toBe(b);
  const records = (await auditRecords(assembly)).filter((r) => r.kind === "action");
  expect(records).toHaveLength(4);
  for (const record of records) {
    const account = (record.args as { account: string }).account;
    expect(record.trace_id).toBe(account.startsWith("A") ? a : b);
  }
});

it("trace.llm counts a LangChain model call by the message's usage_metadata and refuses one past the budget", async () => {
  const assembly = await setup();
  const model = new ScriptedChatModel([
    new AIMessage({
      content: "a plan",
      usage_metadata: { input_tokens: 90, output_tokens: 30, total_tokens: 120 },
    }),
  ]);
  let invoked = 0;
  const summary = await assembly.trace("plan", async (trace) => {
    const message = await trace.llm({ model: "scripted", estimate: { tokens: 150 } }, () => {
      invoked++;
      return model.invoke("make a plan");
    });
    expect(message.content).toBe("a plan");
    // 120 of 200 used: an estimate of 100 does not fit the agent's budget; the model is not called.
    await expect(
      trace.llm({ model: "scripted", estimate: { tokens: 100 } }, () => {
        invoked++;
        return model.invoke("again");
      }),
    ).rejects.toMatchObject({ code: "BUDGET_EXCEEDED", details: { scope: "agent", used: 120, limit: 200 } });
    return trace.summary();
  });
  expect(invoked).toBe(1);
  expect(summary.llmCalls.map((c) => [c.status, c.usage, c.usageSource])).toEqual([
    ["ok", { tokens: 120, cost: 0 }, "response"],
    ["denied", null, null],
  ]);
  expect((await assembly.whoami()).budgets.tokens).toMatchObject({ used: 120, reserved: 0 });
});
