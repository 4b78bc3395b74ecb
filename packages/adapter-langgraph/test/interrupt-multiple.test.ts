/**
 * Approvals as interrupts when one tool-node step holds two calls: LangGraph resumes interrupts one at a
 * time, so the graph pauses until every held call is decided; each call runs exactly once.
 */

import { langchainAdapter } from "@aa/adapter-langchain";
import { type AssemblyContext, initAssembly } from "@aa/core";
import { tool } from "@langchain/core/tools";
import { Command, MemorySaver } from "@langchain/langgraph";
import { createReactAgent } from "@langchain/langgraph/prebuilt";
import { afterEach, expect, it } from "vitest";
import { z } from "zod";
import { createLangGraphAdapter } from "../src/index.js";
import { askTools, ScriptedChatModel, TEST_POLICY } from "./helpers.js";

let assembly: AssemblyContext | undefined;
afterEach(async () => {
  await assembly?.shutdown();
});

it("two calls held in one tool-node step: each pause releases them once approved", async () => {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "graph-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters: [langchainAdapter, createLangGraphAdapter({ approvals: "interrupt" })],
    root: new URL("..", import.meta.url).pathname,
  });
  const ran: string[] = [];
  const deploy = tool(
    async ({ service }: { service: string }) => {
      ran.push(service);
      return `deployed ${service}`;
    },
    { name: "deploy", description: "deploy", schema: z.object({ service: z.string() }) },
  );
  const model = new ScriptedChatModel([
    askTools(
      { name: "deploy", args: { service: "api" }, id: "c-1" },
      { name: "deploy", args: { service: "web" }, id: "c-2" },
    ),
  ]);
  const agent = createReactAgent({ llm: model, tools: [deploy], checkpointer: new MemorySaver() });
  const config = { configurable: { thread_id: "t-two" } };
  let state = (await agent.invoke({ messages: [{ role: "user", content: "ship" }] }, config)) as {
    __interrupt__?: { value: { approvalId: string; toolCallId: string } }[];
  };
  const seen: string[] = [];
  for (let round = 0; round < 4 && state.__interrupt__?.length; round++) {
    for (const pending of state.__interrupt__) {
      seen.push(pending.value.toolCallId);
      const approval = await assembly.getApproval(pending.value.approvalId);
      if (approval?.state === "pending") await assembly.approve(pending.value.approvalId, "operator");
    }
    state = (await agent.invoke(new Command({ resume: true }), config)) as typeof state;
  }
  expect(seen).toContain("c-1");
  expect(state.__interrupt__).toBeUndefined();
  expect([...ran].sort()).toEqual(["api", "web"]);
  expect(
    model
      .toolMessagesAt(1)
      .map(({ toolCallId, status }) => `${toolCallId}:${status}`)
      .sort(),
  ).toEqual(["c-1:success", "c-2:success"]);
});
