/**
 * Version-matrix smoke test: governs graphs of the `@langchain/langgraph` installed in a host app
 * (with that host's `@langchain/core`), not the workspace's copy. `scripts/version-matrix.mjs`
 * installs each version of the declared range into a temporary host and runs this file with
 * `AA_MATRIX_HOST=<host root>`; in the package's own test run (no variable) the host is this package.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { langchainAdapter } from "@aa/adapter-langchain";
import { type AssemblyContext, createHostContext, type FrameworkAdapter, initAssembly } from "@aa/core";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLangGraphAdapter, LANGGRAPH_SUPPORTED_VERSIONS, langgraphAdapter } from "../../src/index.js";

const HOST_ROOT = process.env.AA_MATRIX_HOST ?? new URL("../..", import.meta.url).pathname;
const host = createHostContext(HOST_ROOT);
const versionOf = (name: string): string =>
  (
    JSON.parse(readFileSync(join(HOST_ROOT, "node_modules", name, "package.json"), "utf8")) as {
      version: string;
    }
  ).version;
const LANGGRAPH_VERSION = versionOf("@langchain/langgraph");
const CORE_VERSION = versionOf("@langchain/core");

const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
    { name: "deploys-need-review", action: "deploy", effect: "require_approval" },
  ],
};

type Build = "esm" | "cjs";
// biome-ignore lint/suspicious/noExplicitAny: the host's modules are loaded at run time, of any version
type Loose = any;

/** One build of the host's LangGraph and LangChain core, as the application would load it. */
interface HostBuild {
  tool: Loose;
  AIMessage: Loose;
  BaseChatModel: new (fields: object) => Loose;
  graph: Loose;
  prebuilt: Loose;
  z: Loose;
}

const builds = {} as Record<Build, HostBuild>;

beforeAll(async () => {
  for (const build of ["esm", "cjs"] as const) {
    const load =
      build === "esm" ? (s: string) => host.import<Loose>(s) : async (s: string) => host.require(s);
    builds[build] = {
      tool: (await load("@langchain/core/tools")).tool,
      AIMessage: (await load("@langchain/core/messages")).AIMessage,
      BaseChatModel: (await load("@langchain/core/language_models/chat_models")).BaseChatModel,
      graph: await load("@langchain/langgraph"),
      prebuilt: await load("@langchain/langgraph/prebuilt"),
      z: (await load("zod")).z,
    };
  }
});

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern(
  adapters: readonly FrameworkAdapter[] = [langchainAdapter, langgraphAdapter],
): Promise<AssemblyContext> {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "matrix-graph-bot" },
    policy: POLICY,
    store: ":memory:",
    adapters,
    root: HOST_ROOT,
  });
  return assembly;
}

function transferTool(build: HostBuild, ran: number[]): Loose {
  return build.tool(
    async ({ amount }: { amount: number }) => {
      ran.push(amount);
      return `sent ${amount}`;
    },
    { name: "transfer", description: "send money", schema: build.z.object({ amount: build.z.number() }) },
  );
}

/** An AI message asking for transfers of the given amounts (tool-call ids `c-<amount>`). */
function askTransfers(build: HostBuild, ...amounts: number[]): Loose {
  return new build.AIMessage({
    content: "",
    tool_calls: amounts.map((amount) => ({
      name: "transfer",
      args: { amount },
      id: `c-${amount}`,
      type: "tool_call",
    })),
  });
}

/** A chat model of the host's build that answers the scripted messages in order, then "done". */
function scriptedModel(build: HostBuild, script: unknown[]): Loose {
  class ScriptedChatModel extends build.BaseChatModel {
    received: Loose[][] = [];
    turn = 0;
    _llmType(): string {
      return "scripted";
    }
    bindTools(): Loose {
      return this;
    }
    async _generate(messages: Loose[]): Promise<Loose> {
      this.received.push([...messages]);
      const message = script[this.turn++] ?? new build.AIMessage("done");
      return { generations: [{ text: "", message }] };
    }
  }
  return new ScriptedChatModel({});
}

/** Tool messages the model received on `turn` (0-based). */
function toolMessagesAt(model: Loose, turn: number): { content: string; status: unknown; id: unknown }[] {
  return (model.received[turn] ?? [])
    .filter((message: Loose) => message.getType() === "tool")
    .map((message: Loose) => ({
      content: String(message.content),
      status: message.status,
      id: message.tool_call_id,
    }));
}

async function auditRecords(context: AssemblyContext): Promise<Record<string, Loose>[]> {
  return (await context.audit({ limit: 100 })).items as Record<string, Loose>[];
}

describe(`@langchain/langgraph ${LANGGRAPH_VERSION} with @langchain/core ${CORE_VERSION} (host ${HOST_ROOT})`, () => {
  it("is inside the declared range; the LangChain and LangGraph adapters install", async () => {
    const context = await govern();
    expect(context.adapters.map(({ name, status }) => ({ name, status }))).toEqual([
      { name: "langchain", status: "installed" },
      { name: "langgraph", status: "installed" },
    ]);
    expect(context.adapters[1]!.frameworkVersion).toBe(LANGGRAPH_VERSION);
    expect(LANGGRAPH_SUPPORTED_VERSIONS).toBe(langgraphAdapter.supportedVersions);
  });

  describe.each(["esm", "cjs"] as const)("%s build", (buildName) => {
    it("StateGraph + ToolNode: one audit event per tool call with the thread id; the denied call does not run", async () => {
      const context = await govern();
      const build = builds[buildName];
      const { StateGraph, MessagesAnnotation, MemorySaver, START, END } = build.graph;
      const { ToolNode, toolsCondition } = build.prebuilt;
      const ran: number[] = [];
      const model = scriptedModel(build, [askTransfers(build, 10, 250)]);
      const graph = new StateGraph(MessagesAnnotation)
        .addNode("agent", async (state: Loose) => ({ messages: [await model.invoke(state.messages)] }))
        .addNode("tools", new ToolNode([transferTool(build, ran)]))
        .addEdge(START, "agent")
        .addConditionalEdges("agent", toolsCondition, ["tools", END])
        .addEdge("tools", "agent")
        .compile({ checkpointer: new MemorySaver() });
      await graph.invoke(
        { messages: [{ role: "user", content: "pay" }] },
        { configurable: { thread_id: `thread-${buildName}` } },
      );

      expect(ran).toEqual([10]);
      const records = await auditRecords(context);
      expect(records).toHaveLength(2);
      for (const record of records) {
        expect(record.metadata).toMatchObject({ thread_id: `thread-${buildName}`, langgraph_node: "tools" });
      }
      const denial = toolMessagesAt(model, 1).find((message) => message.id === "c-250");
      expect(denial?.status).toBe("error");
      expect(denial?.content).toContain("args.amount lt 100 (actual: 250)");
    });
  });

  it("createReactAgent: the allowed call runs once, the denied one not, one audit event each", async () => {
    const context = await govern();
    const build = builds.esm;
    const ran: number[] = [];
    const model = scriptedModel(build, [askTransfers(build, 20, 800)]);
    const agent = build.prebuilt.createReactAgent({
      llm: model,
      tools: [transferTool(build, ran)],
      checkpointer: new build.graph.MemorySaver(),
    });
    await agent.invoke(
      { messages: [{ role: "user", content: "pay" }] },
      { configurable: { thread_id: "react-1" } },
    );

    expect(ran).toEqual([20]);
    const records = await auditRecords(context);
    expect(records).toHaveLength(2);
    for (const record of records) expect(record.metadata).toMatchObject({ thread_id: "react-1" });
    const denial = toolMessagesAt(model, 1).find((message) => message.id === "c-800");
    expect(denial?.content).toContain("args.amount lt 100 (actual: 800)");
  });

  it('approvals: "interrupt": a held call pauses the graph, runs once after approval and Command({ resume })', async () => {
    const context = await govern([langchainAdapter, createLangGraphAdapter({ approvals: "interrupt" })]);
    const build = builds.esm;
    const ran: string[] = [];
    const deploy = build.tool(
      async ({ service }: { service: string }) => {
        ran.push(service);
        return `deployed ${service}`;
      },
      {
        name: "deploy",
        description: "deploy a service",
        schema: build.z.object({ service: build.z.string() }),
      },
    );
    const model = scriptedModel(build, [
      new build.AIMessage({
        content: "",
        tool_calls: [{ name: "deploy", args: { service: "api" }, id: "c-deploy", type: "tool_call" }],
      }),
    ]);
    const agent = build.prebuilt.createReactAgent({
      llm: model,
      tools: [deploy],
      checkpointer: new build.graph.MemorySaver(),
    });
    const thread = { configurable: { thread_id: "interrupt-1" } };

    const paused = await agent.invoke({ messages: [{ role: "user", content: "ship" }] }, thread);
    const interrupts: { value: Record<string, unknown> }[] = paused.__interrupt__ ?? [];
    expect(interrupts).toHaveLength(1);
    expect(interrupts[0]!.value).toMatchObject({
      type: "agent-assembly/approval",
      tool: "deploy",
      toolCallId: "c-deploy",
    });
    expect(ran).toEqual([]);

    await context.approve(String(interrupts[0]!.value.approvalId), "operator");
    const resumed = await agent.invoke(new build.graph.Command({ resume: { approved: true } }), thread);
    expect(resumed.__interrupt__).toBeUndefined();
    expect(ran).toEqual(["api"]);
    expect(toolMessagesAt(model, 1)).toMatchObject([{ id: "c-deploy", status: "success" }]);
  });
});
