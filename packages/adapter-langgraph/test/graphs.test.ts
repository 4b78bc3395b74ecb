/**
 * LangGraph graphs governed end to end: the real `initAssembly` with the LangChain and LangGraph
 * adapters, `createReactAgent` and a hand-built `StateGraph` + `ToolNode`, scripted chat models.
 */
import { randomUUID } from "node:crypto";
import { langchainAdapter } from "@aa/adapter-langchain";
import { type AssemblyContext, type FrameworkAdapter, initAssembly } from "@aa/core";
import { StructuredTool, tool } from "@langchain/core/tools";
import { Command, END, MemorySaver, MessagesAnnotation, START, StateGraph } from "@langchain/langgraph";
import { createReactAgent, ToolNode, toolsCondition } from "@langchain/langgraph/prebuilt";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { createLangGraphAdapter, langgraphAdapter } from "../src/index.js";
import { askTools, auditRecords, pendingApprovals, ScriptedChatModel, TEST_POLICY } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const ORIGINAL_CALL = StructuredTool.prototype.call;

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern(
  adapters: ReadonlyArray<FrameworkAdapter | string> = [langchainAdapter, langgraphAdapter],
) {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "graph-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters,
    root: ROOT,
  });
  return assembly;
}

function bankTools() {
  const ran: string[] = [];
  const transfer = tool(
    async ({ amount, to }: { amount: number; to: string }) => {
      ran.push(`transfer ${amount} to ${to}`);
      return `sent ${amount} to ${to}`;
    },
    { name: "transfer", description: "send money", schema: z.object({ amount: z.number(), to: z.string() }) },
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

const thread = (id: string) => ({ configurable: { thread_id: id } });

describe("LangGraph under Agent Assembly", () => {
  it("discovers the LangChain adapter from the app's dependencies and reports what each adapter wraps", async () => {
    const context = await govern(["langchain", langgraphAdapter]);
    expect(context.adapters.map(({ name, priority, status }) => ({ name, priority, status }))).toEqual([
      { name: "langchain", priority: 0, status: "installed" },
      { name: "langgraph", priority: 1, status: "installed" },
    ]);
    expect(context.adapters[0]!.entryPoints).toContain(
      "@langchain/core/tools StructuredTool.prototype.call (esm)",
    );
    // Graph tool calls are LangChain tool calls: the LangGraph adapter wraps nothing of its own.
    expect(context.adapters[1]!.entryPoints).toEqual([]);
  });

  it("createReactAgent: one audit event per tool call, with thread, node and run in its metadata", async () => {
    const context = await govern();
    const { ran, transfer } = bankTools();
    const model = new ScriptedChatModel([
      askTools(
        { name: "transfer", args: { amount: 10, to: "ann" }, id: "c-1" },
        { name: "transfer", args: { amount: 800, to: "bob" }, id: "c-2" },
      ),
    ]);
    const agent = createReactAgent({ llm: model, tools: [transfer], checkpointer: new MemorySaver() });
    // LangGraph Platform passes the run id as configurable.run_id (a local `runId` is not passed down to tools).
    const runId = randomUUID();
    await agent.invoke(
      { messages: [{ role: "user", content: "pay" }] },
      { configurable: { thread_id: "thread-1", run_id: runId } },
    );

    expect(ran).toEqual(["transfer 10 to ann"]);
    const records = await auditRecords(context);
    expect(records).toHaveLength(2);
    for (const record of records) {
      expect(record.metadata).toMatchObject({
        thread_id: "thread-1",
        langgraph_node: "tools",
        run_id: runId,
        checkpoint_id: expect.any(String),
      });
    }
    const denial = model.toolMessagesAt(1).find((message) => message.toolCallId === "c-2");
    expect(denial?.status).toBe("error");
    expect(denial?.content).toContain("args.amount lt 100 (actual: 800)");
  });

  it("a hand-built StateGraph with ToolNode: the denied call does not run and the model reads why", async () => {
    await govern();
    const { ran, transfer } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "transfer", args: { amount: 250, to: "bob" }, id: "c-big" }),
      askTools({ name: "transfer", args: { amount: 25, to: "bob" }, id: "c-small" }),
    ]);
    const graph = new StateGraph(MessagesAnnotation)
      .addNode("agent", async (state) => ({ messages: [await model.invoke(state.messages)] }))
      .addNode("tools", new ToolNode([transfer]))
      .addEdge(START, "agent")
      .addConditionalEdges("agent", toolsCondition, ["tools", END])
      .addEdge("tools", "agent")
      .compile();
    await graph.invoke({ messages: [{ role: "user", content: "pay bob" }] });
    expect(ran).toEqual(["transfer 25 to bob"]);
    const [denial] = model.toolMessagesAt(1);
    expect(denial).toMatchObject({ status: "error", toolCallId: "c-big" });
    expect(denial!.content).toContain('policy "small-transfers"');
    expect(denial!.content).toContain("args.amount lt 100 (actual: 250)");
  });

  it("approvals as interrupts: the graph pauses, resumes after approval, and the allowed call never runs twice", async () => {
    const context = await govern([langchainAdapter, createLangGraphAdapter({ approvals: "interrupt" })]);
    const { ran, transfer, deploy } = bankTools();
    const model = new ScriptedChatModel([
      askTools(
        { name: "transfer", args: { amount: 10, to: "ann" }, id: "c-pay" },
        { name: "deploy", args: { service: "api" }, id: "c-deploy" },
      ),
    ]);
    const agent = createReactAgent({
      llm: model,
      tools: [transfer, deploy],
      checkpointer: new MemorySaver(),
    });

    const paused = await agent.invoke(
      { messages: [{ role: "user", content: "pay and ship" }] },
      thread("t-approve"),
    );
    const interrupts =
      (paused as { __interrupt__?: { value: Record<string, unknown> }[] }).__interrupt__ ?? [];
    expect(interrupts).toHaveLength(1);
    const request = interrupts[0]!.value;
    expect(request).toMatchObject({
      type: "agent-assembly/approval",
      tool: "deploy",
      toolCallId: "c-deploy",
    });
    expect(request.args).toEqual({ service: "api" });
    expect(ran).toEqual(["transfer 10 to ann"]);
    const [approval] = await pendingApprovals(context);
    expect(approval!.id).toBe(request.approvalId);

    await context.approve(String(request.approvalId), "operator");
    const resumed = await agent.invoke(new Command({ resume: { approved: true } }), thread("t-approve"));

    expect(ran).toEqual(["transfer 10 to ann", "deploy api"]);
    expect((resumed as { __interrupt__?: unknown }).__interrupt__).toBeUndefined();
    expect(model.toolMessagesAt(1).map(({ toolCallId, status }) => ({ toolCallId, status }))).toEqual([
      { toolCallId: "c-pay", status: "success" },
      { toolCallId: "c-deploy", status: "success" },
    ]);
    // The resumed re-run of the tool node asked the gate again under the same event ids: no new records.
    const records = await auditRecords(context);
    expect(records.filter((record) => record.tool === "transfer")).toHaveLength(1);
  });

  it("approvals as interrupts: denied by the reviewer, the call does not run and the model reads DENIED_BY_REVIEWER", async () => {
    const context = await govern([langchainAdapter, createLangGraphAdapter({ approvals: "interrupt" })]);
    const { ran, deploy } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "deploy", args: { service: "db" }, id: "c-deploy" }),
    ]);
    const agent = createReactAgent({ llm: model, tools: [deploy], checkpointer: new MemorySaver() });

    const paused = await agent.invoke({ messages: [{ role: "user", content: "ship" }] }, thread("t-deny"));
    const request = (paused as unknown as { __interrupt__: { value: { approvalId: string } }[] })
      .__interrupt__[0]!.value;
    await context.deny(request.approvalId, "operator", "freeze week");
    await agent.invoke(new Command({ resume: { approved: false } }), thread("t-deny"));

    expect(ran).toEqual([]);
    const [denial] = model.toolMessagesAt(1);
    expect(denial).toMatchObject({ status: "error", toolCallId: "c-deploy" });
    expect(denial!.content).toContain("DENIED_BY_REVIEWER");
    expect(denial!.content).toContain("freeze week");
  });

  it('approvals "wait" (default): the tool call waits inside the graph until the operator approves', async () => {
    const context = await govern();
    const { ran, deploy } = bankTools();
    const model = new ScriptedChatModel([
      askTools({ name: "deploy", args: { service: "web" }, id: "c-deploy" }),
    ]);
    const agent = createReactAgent({ llm: model, tools: [deploy], checkpointer: new MemorySaver() });
    const running = agent.invoke({ messages: [{ role: "user", content: "ship" }] }, thread("t-wait"));
    const [approval] = await pendingApprovals(context);
    expect(ran).toEqual([]);
    await context.approve(approval!.id, "operator");
    await running;
    expect(ran).toEqual(["deploy web"]);
  });

  it("refuses to install without the LangChain adapter (graph tools would run ungoverned), leaving nothing patched", async () => {
    await expect(govern([langgraphAdapter])).rejects.toMatchObject({
      code: "ADAPTER_INSTALL_FAILED",
      message: expect.stringContaining("@aa/adapter-langchain"),
    });
    expect(StructuredTool.prototype.call).toBe(ORIGINAL_CALL);
  });

  it("shutdown restores LangChain's method and graph tools run ungoverned again", async () => {
    const context = await govern();
    const { ran, transfer } = bankTools();
    await context.shutdown();
    assembly = undefined;
    expect(StructuredTool.prototype.call).toBe(ORIGINAL_CALL);
    const model = new ScriptedChatModel([
      askTools({ name: "transfer", args: { amount: 999, to: "x" }, id: "c-1" }),
    ]);
    await createReactAgent({ llm: model, tools: [transfer] }).invoke({
      messages: [{ role: "user", content: "pay" }],
    });
    expect(ran).toEqual(["transfer 999 to x"]);
  });
});
