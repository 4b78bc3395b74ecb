/**
 * Decision traces through a real gateway process: a LangChain agent's tool calls inside
 * `assembly.trace()` reach the gateway with the trace id and step, `audit({ traceId })` finds
 * exactly them over `GET /v1/audit?traceId=`, and `trace.llm` keeps the trace's own token budget
 * (the agent's token budgets are the gateway's, not reserved from the client).
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { langchainAdapter } from "@aa/adapter-langchain";
import { askTools, ScriptedChatModel } from "@aa/adapter-langchain/testing";
import { initAssembly, type TraceSummary } from "@aa/core";
import { createAgent } from "langchain";
import { expect, it } from "vitest";
import { startGatewayProcess } from "../dist/run.js";
import { openPr, readChanges } from "../dist/tools.js";

const root = new URL("..", import.meta.url).pathname;

it("a traced LangChain agent through a gateway: records carry the trace, audit filters by it, the trace budget holds", {
  timeout: 120_000,
}, async () => {
  const gateway = await startGatewayProcess(join(mkdtempSync(join(tmpdir(), "aa-gw-trace-")), "g.db"));
  const assembly = await initAssembly({
    mode: "sdk-only",
    root,
    gatewayUrl: gateway.url,
    apiKey: gateway.agentKey,
    adapters: [langchainAdapter],
    gatewayClient: { retryDelaysMs: [20, 20], requestTimeoutMs: 5000 },
  });
  try {
    await assembly.execute("read_changes"); // outside any trace
    const incoming = "0af7651916cd43dd8448eb211c80319c";
    let summary: TraceSummary | undefined;
    await assembly.trace(
      "ship",
      async (trace) => {
        const agent = createAgent({
          model: new ScriptedChatModel([
            askTools({ name: "read_changes", args: {}, id: "c1" }),
            askTools({ name: "open_pr", args: { title: "everything", lines_changed: 120 }, id: "c2" }),
          ]),
          tools: [readChanges, openPr],
        });
        await trace.step("agent", () => agent.invoke({ messages: [{ role: "user", content: "ship" }] }));
        await trace.llm({ model: "scripted", estimate: { tokens: 80 } }, (call) =>
          call.report({ tokens: 70 }),
        );
        await expect(
          trace.llm({ model: "scripted", estimate: { tokens: 50 } }, () => "never"),
        ).rejects.toMatchObject({
          code: "BUDGET_EXCEEDED",
          details: { scope: "trace", used: 70, limit: 100 },
        });
      },
      {
        traceparent: `00-${incoming}-b7ad6b7169203331-01`,
        budget: { tokens: 100 },
        onEnd: (s) => (summary = s),
      },
    );

    const traced = (await assembly.audit({ traceId: incoming })).items;
    expect(traced.map((r) => [r.tool, r.status, r.trace_id, r.metadata?.aa_trace])).toEqual([
      ["read_changes", "executed", incoming, { name: "ship", span_id: summary!.spanId, step: "agent" }],
      ["open_pr", "denied", incoming, { name: "ship", span_id: summary!.spanId, step: "agent" }],
    ]);
    expect(summary!.toolCalls.map((c) => c.auditEventId)).toEqual(traced.map((r) => r.id));
    expect(summary).toMatchObject({
      traceId: incoming,
      parentSpanId: "b7ad6b7169203331",
      usage: { tokens: 70 },
    });
    const everything = (await assembly.audit()).items;
    expect(everything.map((r) => r.trace_id)).toEqual([null, incoming, incoming]);
  } finally {
    await assembly.shutdown();
    await gateway.stop();
  }
});
