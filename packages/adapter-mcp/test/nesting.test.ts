/**
 * Test-only demonstration of the core mechanism proposed in the adapter needs: "a call already gated
 * by a higher-rank adapter produces one audit event, not two". Core has no nesting detection; here an
 * interceptor decorator implements the proposal around the REAL core interceptor, the REAL LangChain
 * adapter (rank 0) and this adapter (rank 99, the backstop):
 *
 * - a non-backstop adapter's call runs its `invoke()` (after its decision) inside an
 *   AsyncLocalStorage frame — entered only because a backstop is installed;
 * - a backstop call that finds a frame is nested in an already governed call: it runs directly.
 *
 * The case is `@langchain/mcp-adapters`' shape: a LangChain tool whose function awaits
 * `client.callTool(...)` on a real stdio MCP server in a child process.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { langchainAdapter } from "@aa/adapter-langchain";
import {
  type AdapterContext,
  type AssemblyContext,
  type FrameworkAdapter,
  type Interceptor,
  initAssembly,
  type ToolCall,
} from "@aa/core";
import { tool } from "@langchain/core/tools";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { mcpAdapter } from "../src/index.js";
import { auditRecords, TEST_POLICY, textOf } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const STDIO_SERVER = new URL("./fixtures/stdio-server.mjs", import.meta.url).pathname;
const BACKSTOP_RANK = 99;

/** The proposed core mechanism, as a decorator of the interceptor core hands each adapter. */
function withNestingDetection(
  adapter: FrameworkAdapter,
  frames: AsyncLocalStorage<ToolCall>,
): FrameworkAdapter {
  const backstop = (adapter.priority ?? 50) >= BACKSTOP_RANK;
  const decorate = (inner: Interceptor): Interceptor => ({
    intercept<T>(
      call: ToolCall,
      invoke: () => T | Promise<T>,
      options?: Parameters<Interceptor["intercept"]>[2],
    ) {
      if (backstop) {
        // Nested in a call a higher-rank adapter already decided: no second decision or audit event.
        if (frames.getStore() !== undefined) return Promise.resolve().then(invoke);
        return inner.intercept(call, invoke, options);
      }
      // Only the execution (after the decision) runs in the frame, never the decision itself.
      return inner.intercept(call, () => frames.run(call, invoke), options);
    },
  });
  return {
    name: adapter.name,
    supportedVersions: adapter.supportedVersions,
    ...(adapter.targetPackage !== undefined ? { targetPackage: adapter.targetPackage } : {}),
    ...(adapter.priority !== undefined ? { priority: adapter.priority } : {}),
    isAvailable: (context: AdapterContext) => adapter.isAvailable(context),
    registerHooks: (interceptor: Interceptor, context: AdapterContext) =>
      adapter.registerHooks(decorate(interceptor), context),
    unregisterHooks: () => adapter.unregisterHooks(),
  };
}

let assembly: AssemblyContext | undefined;
let client: Client | undefined;
afterEach(async () => {
  await client?.close();
  client = undefined;
  await assembly?.shutdown();
  assembly = undefined;
});

async function setUp(adapters: FrameworkAdapter[]) {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "nested-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters,
    root: ROOT,
  });
  client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(
    new StdioClientTransport({ command: process.execPath, args: [STDIO_SERVER], cwd: ROOT }),
  );
  const mcpClient = client;
  // What @langchain/mcp-adapters builds: a LangChain tool whose function calls the MCP client.
  const transfer = tool(
    async ({ amount }: { amount: number }) =>
      textOf(await mcpClient.callTool({ name: "transfer", arguments: { amount } })),
    {
      name: "transfer",
      description: "send money through the bank MCP server",
      schema: z.object({ amount: z.number() }),
    },
  );
  return { assembly, client, transfer };
}

const frameworksOf = async (context: AssemblyContext) =>
  (await auditRecords(context)).map((record) => [record.framework, record.status]);

describe("nesting: an MCP call inside a governed LangChain tool", () => {
  it("today (no core support): two audit events for one call", async () => {
    const { assembly, transfer } = await setUp([langchainAdapter, mcpAdapter]);
    expect(await transfer.invoke({ amount: 5 })).toContain("transfer done");
    expect(await frameworksOf(assembly)).toEqual([
      ["langchain", "executed"],
      ["mcp", "executed"],
    ]);
  });

  it("with the proposed mechanism: one audit event; a direct MCP call outside any tool is still decided", async () => {
    const frames = new AsyncLocalStorage<ToolCall>();
    const { assembly, client, transfer } = await setUp([
      withNestingDetection(langchainAdapter, frames),
      withNestingDetection(mcpAdapter, frames),
    ]);
    expect(await transfer.invoke({ amount: 5 })).toContain("transfer done");
    expect(await frameworksOf(assembly)).toEqual([["langchain", "executed"]]);

    const direct = await client.callTool({ name: "transfer", arguments: { amount: 500 } });
    expect(direct.isError).toBe(true);
    expect(await frameworksOf(assembly)).toEqual([
      ["langchain", "executed"],
      ["mcp", "denied"],
    ]);
    // The outer decision still governs: a denied LangChain call never reaches the MCP client.
    await expect(transfer.invoke({ amount: 700 })).rejects.toMatchObject({ name: "AssemblyDeniedError" });
    expect((await frameworksOf(assembly)).at(-1)).toEqual(["langchain", "denied"]);
  });
});
