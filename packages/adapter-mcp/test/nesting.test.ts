/**
 * "A call already gated by a higher-rank adapter produces one audit event, not two": core's nesting
 * detection (backstop adapters, rank >= 99, stand aside inside an already governed call) with the
 * REAL LangChain adapter (rank 0) and this adapter (rank 99, the backstop).
 *
 * The case is `@langchain/mcp-adapters`' shape: a LangChain tool whose function awaits
 * `client.callTool(...)` on a real stdio MCP server in a child process.
 */
import { langchainAdapter } from "@aa/adapter-langchain";
import { type AssemblyContext, type FrameworkAdapter, initAssembly } from "@aa/core";
import { tool } from "@langchain/core/tools";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { mcpAdapter } from "../src/index.js";
import { auditRecords, TEST_POLICY, textOf } from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const STDIO_SERVER = new URL("./fixtures/stdio-server.mjs", import.meta.url).pathname;

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
  it("is decided and audited once, by the LangChain adapter; the MCP call still runs", async () => {
    const { assembly, transfer } = await setUp([langchainAdapter, mcpAdapter]);
    expect(await transfer.invoke({ amount: 5 })).toContain("transfer done");
    expect(await frameworksOf(assembly)).toEqual([["langchain", "executed"]]);
  });

  it("a direct MCP call outside any tool is still decided by the backstop", async () => {
    const { assembly, client } = await setUp([langchainAdapter, mcpAdapter]);
    const direct = await client.callTool({ name: "transfer", arguments: { amount: 500 } });
    expect(direct.isError).toBe(true);
    expect(textOf(direct)).toContain("args.amount lt 100 (actual: 500)");
    expect(await frameworksOf(assembly)).toEqual([["mcp", "denied"]]);
  });

  it("a call the outer adapter denies never reaches the MCP client", async () => {
    const { assembly, transfer, client } = await setUp([langchainAdapter, mcpAdapter]);
    const executed = async () => {
      const request = Object.getPrototypeOf(Client.prototype).request as Client["request"];
      const { CallToolResultSchema } = await import("@modelcontextprotocol/sdk/types.js");
      const result = await request.call(
        client,
        { method: "tools/call", params: { name: "executed", arguments: {} } },
        CallToolResultSchema,
      );
      return JSON.parse(textOf(result)) as string[];
    };
    await expect(transfer.invoke({ amount: 700 })).rejects.toMatchObject({ name: "AssemblyDeniedError" });
    expect(await frameworksOf(assembly)).toEqual([["langchain", "denied"]]);
    expect(await executed()).toEqual([]);
  });
});
