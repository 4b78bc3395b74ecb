/**
 * LangChain agents governed end to end: the real `initAssembly` (embedded gate, inline policy,
 * in-memory or SQLite store) and `langchain`'s `createAgent` driven by a scripted chat model.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type AssemblyContext, AssemblyDeniedError, initAssembly } from "@aa/core";
import { StructuredTool, tool } from "@langchain/core/tools";
import { createAgent } from "langchain";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { langchainAdapter } from "../src/index.js";
import { askTools, auditRecords, pendingApprovals, ScriptedChatModel, TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const ORIGINAL_CALL = StructuredTool.prototype.call;

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern(overrides: { store?: string; enforcementMode?: "enforce" | "observe" } = {}) {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "payments-bot" },
    policy: TEST_POLICY,
    store: overrides.store ?? ":memory:",
    enforcementMode: overrides.enforcementMode ?? "enforce",
    adapters: [langchainAdapter],
    root: ROOT,
  });
  return assembly;
}

/** The tools of the test agent; `ran` records every real execution. */
function bankTools() {
  const ran: string[] = [];
  const transfer = tool(
    async ({ amount, to }: { amount: number; to: string }) => {
      ran.push(`transfer ${amount} to ${to}`);
      return `sent ${amount} to ${to}`;
    },
    {
      name: "transfer",
      description: "send money",
      schema: z.object({ amount: z.number(), to: z.string() }),
    },
  );
  const deploy = tool(
    async ({ service }: { service: string }) => {
      ran.push(`deploy ${service}`);
      return `deployed ${service}`;
    },
    { name: "deploy", description: "deploy a service", schema: z.object({ service: z.string() }) },
  );
  return { ran, transfer, deploy };
}

describe("createAgent (langchain) under Agent Assembly", () => {
  it("reports the entry points it really wrapped", async () => {
    const context = await govern();
    expect(context.adapters).toEqual([
      expect.objectContaining({
        name: "langchain",
        priority: 0,
        status: "installed",
        entryPoints: [
          "@langchain/core/tools StructuredTool.prototype.call (esm)",
          "@langchain/core/tools StructuredTool.prototype.call (cjs)",
          "@langchain/core/runnables RunnableToolLike.prototype.invoke (esm)",
          "@langchain/core/runnables RunnableToolLike.prototype.invoke (cjs)",
        ],
      }),
    ]);
  });

  it("runs an allowed call, blocks a denied one, and the model reads the failed condition and corrects itself", async () => {
    await govern();
    const { ran, transfer } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "transfer", args: { amount: 500, to: "bob" }, id: "call-big" }),
      askTools({ name: "transfer", args: { amount: 50, to: "bob" }, id: "call-small" }),
    ]);
    const agent = createAgent({ model, tools: [transfer] });
    const result = await agent.invoke({ messages: [{ role: "user", content: "pay bob" }] });

    expect(ran).toEqual(["transfer 50 to bob"]);
    const [denial] = model.toolMessagesAt(1);
    expect(denial).toMatchObject({ status: "error", toolCallId: "call-big" });
    expect(denial!.content).toContain('policy "small-transfers"');
    expect(denial!.content).toContain("args.amount lt 100 (actual: 500)");
    expect(model.toolMessagesAt(2).at(-1)).toMatchObject({ status: "success", content: "sent 50 to bob" });
    expect(result.messages.at(-1)?.content).toBe("done");
  });

  it("throws the typed AssemblyDeniedError to a direct tool.invoke caller", async () => {
    await govern();
    const { ran, transfer } = bankTools();
    const denial = await transfer.invoke({ amount: 500, to: "eve" }).catch((error: unknown) => error);
    expect(denial).toBeInstanceOf(AssemblyDeniedError);
    expect(denial).toMatchObject({ reason: "CONDITIONS_DENIED", policy: "small-transfers" });
    expect((denial as AssemblyDeniedError).conditions).toContainEqual(
      expect.objectContaining({
        field: "args.amount",
        operator: "lt",
        expected: 100,
        actual: 500,
        result: false,
      }),
    );
    expect(await transfer.invoke({ amount: 5, to: "eve" })).toBe("sent 5 to eve");
    expect(ran).toEqual(["transfer 5 to eve"]);
  });

  it("holds a call for approval: approved, it runs", async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "deploy", args: { service: "api" }, id: "call-deploy" }),
    ]);
    const running = createAgent({ model, tools: [deploy] }).invoke({
      messages: [{ role: "user", content: "ship" }],
    });
    const [approval] = await pendingApprovals(context);
    expect(approval).toMatchObject({ actionType: "deploy", policyName: "deploys-need-review" });
    expect(ran).toEqual([]);
    await context.approve(approval!.id, "operator");
    await running;
    expect(ran).toEqual(["deploy api"]);
    expect(model.toolMessagesAt(1)).toEqual([
      { status: "success", content: "deployed api", toolCallId: "call-deploy" },
    ]);
  });

  it("holds a call for approval: denied, it does not run and the model reads DENIED_BY_REVIEWER", async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "deploy", args: { service: "api" }, id: "call-deploy" }),
    ]);
    const running = createAgent({ model, tools: [deploy] }).invoke({
      messages: [{ role: "user", content: "ship" }],
    });
    const [approval] = await pendingApprovals(context);
    await context.deny(approval!.id, "operator", "not on a Friday");
    await running;
    expect(ran).toEqual([]);
    const [denial] = model.toolMessagesAt(1);
    expect(denial).toMatchObject({ status: "error", toolCallId: "call-deploy" });
    expect(denial!.content).toContain("DENIED_BY_REVIEWER");
    expect(denial!.content).toContain("not on a Friday");
  });

  it("observe mode runs everything and records the would-be denial", async () => {
    const context = await govern({ enforcementMode: "observe" });
    const { ran, transfer } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "transfer", args: { amount: 500, to: "bob" }, id: "c-1" }),
    ]);
    await createAgent({ model, tools: [transfer] }).invoke({ messages: [{ role: "user", content: "pay" }] });
    expect(ran).toEqual(["transfer 500 to bob"]);
    const records = await auditRecords(context);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({
      tool: "transfer",
      tool_call_id: "c-1",
      status: "executed",
      mode: "observe",
      shadow: { status: "denied", denialReason: "CONDITIONS_DENIED", policyName: "small-transfers" },
    });
  });

  it("writes exactly one audit event per tool call, into a SQLite file whose chain verifies", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aa-langchain-"));
    try {
      const context = await govern({ store: join(dir, "assembly.db") });
      const { transfer } = bankTools();
      const model = new ScriptedChatModel([
        askTools(
          { name: "transfer", args: { amount: 10, to: "a" }, id: "c-1" },
          { name: "transfer", args: { amount: 900, to: "b" }, id: "c-2" },
        ),
      ]);
      await createAgent({ model, tools: [transfer] }).invoke({
        messages: [{ role: "user", content: "pay" }],
      });
      const records = await auditRecords(context);
      expect(records).toHaveLength(2);
      expect(await context.verify()).toMatchObject({ chainValid: true, checked: 2 });
    } finally {
      await assembly?.shutdown();
      assembly = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("shutdown restores the original method, and a denied tool then runs ungoverned", async () => {
    const context = await govern();
    const { ran, transfer } = bankTools();
    expect(StructuredTool.prototype.call).not.toBe(ORIGINAL_CALL);
    await context.shutdown();
    assembly = undefined;
    expect(StructuredTool.prototype.call).toBe(ORIGINAL_CALL);
    expect(await transfer.invoke({ amount: 500, to: "bob" })).toBe("sent 500 to bob");
    expect(ran).toEqual(["transfer 500 to bob"]);
  });
});
