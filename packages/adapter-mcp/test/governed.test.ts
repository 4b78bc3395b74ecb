/**
 * MCP governed end to end: the real `initAssembly` (embedded gate, inline policy, `:memory:` store)
 * with client and server in-process (`InMemoryTransport`) and a real stdio server in a child process.
 */
import { type AssemblyContext, initAssembly } from "@aa/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { mcpAdapter } from "../src/index.js";
import {
  auditRecords,
  bankServer,
  connect,
  lowLevelServer,
  pendingApprovals,
  type Ran,
  TEST_POLICY,
  textOf,
} from "./helpers.js";

const ROOT = new URL("..", import.meta.url).pathname;
const STDIO_SERVER = new URL("./fixtures/stdio-server.mjs", import.meta.url).pathname;

let assembly: AssemblyContext | undefined;
const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await assembly?.shutdown();
  assembly = undefined;
});

async function govern() {
  assembly = await initAssembly({
    mode: "sdk-only",
    agent: { id: "mcp-bot" },
    policy: TEST_POLICY,
    store: ":memory:",
    adapters: [mcpAdapter],
    root: ROOT,
  });
  return assembly;
}

/** A client connected to the stdio server fixture, run by this Node in a child process. */
async function stdioClient() {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [STDIO_SERVER],
    cwd: ROOT,
    stderr: "pipe",
  });
  const client = new Client({ name: "agent", version: "1.0.0" });
  await client.connect(transport);
  cleanups.push(() => client.close());
  const executed = async () => {
    // `executed` is not in the policy (default deny): ask with the unpatched request, as a test probe.
    const request = Object.getPrototypeOf(Client.prototype).request as Client["request"];
    const result = await request.call(
      client,
      { method: "tools/call", params: { name: "executed", arguments: {} } },
      CallToolResultSchema,
    );
    return JSON.parse(textOf(result)) as string[];
  };
  return { client, transport, executed };
}

describe("MCP under Agent Assembly", () => {
  it("installs as the rank-99 backstop and reports the entry points it really wrapped", async () => {
    const context = await govern();
    expect(context.adapters).toEqual([
      expect.objectContaining({
        name: "mcp",
        priority: 99,
        status: "installed",
        entryPoints: expect.arrayContaining([
          "@modelcontextprotocol/sdk/client Client.prototype.callTool (esm)",
          "@modelcontextprotocol/sdk/client Client.prototype.callTool (cjs)",
          "@modelcontextprotocol/sdk/server Server.prototype.setRequestHandler [tools/call] (esm)",
        ]),
      }),
    ]);
    expect(context.adapters[0]!.entryPoints).toHaveLength(8);
  });

  describe("client side, real stdio server in a child process", () => {
    it("an allowed call reaches the server and returns its result", async () => {
      const context = await govern();
      const { client, transport, executed } = await stdioClient();
      const result = await client.callTool({ name: "transfer", arguments: { amount: 5 } });
      expect(textOf(result)).toBe(`transfer done by pid ${transport.pid}`);
      expect(transport.pid).not.toBe(process.pid);
      expect(await executed()).toEqual(['transfer {"amount":5}']);
      const records = await auditRecords(context);
      expect(records).toHaveLength(1);
      expect(records[0]).toMatchObject({
        action_type: "transfer",
        framework: "mcp",
        metadata: { mcpServer: "bank", mcpSide: "client" },
      });
    });

    it("a denied call never reaches the server and returns isError naming the policy and the failed condition", async () => {
      await govern();
      const { client, executed } = await stdioClient();
      const denied = await client.callTool({ name: "transfer", arguments: { amount: 500 } });
      expect(denied.isError).toBe(true);
      expect(textOf(denied)).toContain('policy "small-transfers"');
      expect(textOf(denied)).toContain("args.amount lt 100 (actual: 500)");
      const bypass = await client.request(
        { method: "tools/call", params: { name: "transfer", arguments: { amount: 900 } } },
        CallToolResultSchema,
      );
      expect(bypass.isError).toBe(true);
      expect(textOf(bypass)).toContain("args.amount lt 100 (actual: 900)");
      expect(await executed()).toEqual([]);
    });

    it("policies read the server's name as tool.mcpServer", async () => {
      await govern();
      const { client, executed } = await stdioClient();
      expect(textOf(await client.callTool({ name: "lookup", arguments: { id: "a" } }))).toContain(
        "lookup done",
      );
      expect(await executed()).toEqual(['lookup {"id":"a"}']);
    });

    it("holds a call for approval; approved by an operator, it runs", async () => {
      const context = await govern();
      const { client, executed } = await stdioClient();
      const pending = client.callTool({ name: "deploy", arguments: { service: "api" } });
      const [approval] = await pendingApprovals(context);
      expect(await executed()).toEqual([]);
      await context.approve(approval!.id, "operator");
      expect(textOf(await pending)).toContain("deploy done");
      expect(await executed()).toEqual(['deploy {"service":"api"}']);
    });

    it("a reviewer's refusal is answered as an isError result, nothing runs", async () => {
      const context = await govern();
      const { client, executed } = await stdioClient();
      const pending = client.callTool({ name: "deploy", arguments: { service: "db" } });
      const [approval] = await pendingApprovals(context);
      await context.deny(approval!.id, "operator", "not during the freeze");
      const answer = await pending;
      expect(answer.isError).toBe(true);
      expect(textOf(answer)).toContain("not during the freeze");
      expect(await executed()).toEqual([]);
    });
  });

  describe("both sides in one process (InMemoryTransport)", () => {
    it("a server not named bank is refused a lookup: the failed condition names tool.mcpServer", async () => {
      await govern();
      const ran: Ran = [];
      const { client, sent } = await connect(lowLevelServer(ran, "other"));
      const denied = await client.callTool({ name: "lookup", arguments: { id: "a" } });
      expect(denied.isError).toBe(true);
      expect(textOf(denied)).toContain('tool.mcpServer eq "bank" (actual: "other")');
      expect(sent).not.toContain("tools/call");
      expect(ran).toEqual([]);
    });

    it("server side: handlers registered before and after initAssembly are gated; a denial is an isError result", async () => {
      const ranBefore: Ran = [];
      const before = bankServer(ranBefore, "bank");
      const { client: clientOfBefore } = await connect(before);
      const context = await govern();
      const ranAfter: Ran = [];
      const { client: clientOfAfter } = await connect(bankServer(ranAfter, "bank"));
      for (const client of [clientOfBefore, clientOfAfter]) {
        expect(textOf(await rawToolsCall(client, "transfer", { amount: 7 }))).toBe("transfer done");
        const denied = await rawToolsCall(client, "transfer", { amount: 700 });
        expect(denied.isError).toBe(true);
        expect(textOf(denied)).toContain("args.amount lt 100 (actual: 700)");
      }
      expect(ranBefore).toEqual(['bank:transfer {"amount":7}']);
      expect(ranAfter).toEqual(['bank:transfer {"amount":7}']);
      const records = await auditRecords(context);
      expect(records).toHaveLength(4);
    });

    it("server side: a held call waits for the operator, then runs", async () => {
      const context = await govern();
      const ran: Ran = [];
      const { client } = await connect(bankServer(ran, "bank"));
      const pending = rawToolsCall(client, "deploy", { service: "api" });
      const [approval] = await pendingApprovals(context);
      expect(ran).toEqual([]);
      await context.approve(approval!.id, "operator");
      expect(textOf(await pending)).toBe("deploy done");
      expect(ran).toEqual(['bank:deploy {"service":"api"}']);
    });
  });
});

/** A `tools/call` sent with the unpatched `request`, as a remote client in another process sends it. */
async function rawToolsCall(client: Client, name: string, args: Record<string, unknown>) {
  const request = Object.getPrototypeOf(Client.prototype).request as Client["request"];
  return request.call(
    client,
    { method: "tools/call", params: { name, arguments: args } },
    CallToolResultSchema,
  );
}
