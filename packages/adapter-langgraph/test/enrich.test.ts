/** `enrichCall` on its own: what it reads from a RunnableConfig and when it stays out of the way. */
import type { ToolCall } from "@aa/core";
import { describe, expect, it } from "vitest";
import { createLangGraphAdapter, graphContextOf } from "../src/index.js";

const call = (native: unknown, toolCallId?: string): ToolCall => ({
  framework: "langchain",
  toolName: "transfer",
  args: {},
  metadata: { runName: "tools" },
  native,
  ...(toolCallId ? { toolCallId } : {}),
});

describe("LangGraph enrichCall", () => {
  it("leaves calls outside a graph alone", () => {
    expect(graphContextOf(undefined)).toBeUndefined();
    expect(graphContextOf({ tags: [], metadata: { team: "a" } })).toBeUndefined();
  });

  it("does nothing before registerHooks and after unregisterHooks", async () => {
    const adapter = createLangGraphAdapter();
    const inGraph = call({ configurable: { thread_id: "t" }, metadata: { langgraph_node: "tools" } }, "c-1");
    expect(adapter.enrichCall?.(inGraph)).toBeUndefined();
    expect(inGraph.metadata).toEqual({ runName: "tools" });
  });

  it("reads thread, node, run and checkpoint namespace from the places LangGraph 1.x puts them", () => {
    expect(
      graphContextOf({
        configurable: { thread_id: "t-1" },
        metadata: { langgraph_node: "tools", langgraph_checkpoint_ns: "tools:abc" },
        executionInfo: { runId: "r-1", threadId: "t-1", checkpointId: "cp-1" },
      }),
    ).toEqual({
      threadId: "t-1",
      node: "tools",
      runId: "r-1",
      checkpointNs: "tools:abc",
      checkpointId: "cp-1",
    });
    expect(graphContextOf({ metadata: { langgraph_node: "tools" } })).toEqual({ node: "tools" });
  });

  it("validates its options", () => {
    expect(() => createLangGraphAdapter({ approvals: "later" as never })).toThrow(
      /"approvals" must be "wait" or "interrupt"/,
    );
  });
});
