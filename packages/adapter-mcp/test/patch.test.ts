/**
 * The patches themselves, with a recording interceptor (the `Interceptor` contract): which entry
 * points are wrapped, what the gate is told on each side, exact restore, idempotence, fail-closed
 * translation. Client and server talk over `InMemoryTransport.createLinkedPair()`.
 */
import { createRequire } from "node:module";
import { createHostContext, isWrapped } from "@aa/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { mcpAdapter } from "../src/index.js";
import { bankServer, connect, lowLevelServer, type Ran, RecordingInterceptor, textOf } from "./helpers.js";

const host = createHostContext(new URL("..", import.meta.url).pathname);
const requireFromHere = createRequire(import.meta.url);
const cjsClient = requireFromHere("@modelcontextprotocol/sdk/client/index.js") as {
  Client: typeof Client;
};
const cjsServer = requireFromHere("@modelcontextprotocol/sdk/server/index.js") as {
  Server: typeof Server;
};

type Slots = Record<string, PropertyDescriptor | undefined>;
function slotsOf(prototype: object, keys: string[]): Slots {
  return Object.fromEntries(keys.map((key) => [key, Object.getOwnPropertyDescriptor(prototype, key)]));
}
const CLIENT_KEYS = ["callTool", "request"];
const SERVER_KEYS = ["setRequestHandler", "_onrequest"];
const ORIGINALS = {
  esmClient: slotsOf(Client.prototype, CLIENT_KEYS),
  cjsClient: slotsOf(cjsClient.Client.prototype, CLIENT_KEYS),
  esmServer: slotsOf(Server.prototype, SERVER_KEYS),
  cjsServer: slotsOf(cjsServer.Server.prototype, SERVER_KEYS),
};

afterEach(async () => {
  await mcpAdapter.unregisterHooks();
});

describe("MCP patch", () => {
  it("wraps the client and server entry points in the ESM and the CJS build", async () => {
    const report = await mcpAdapter.registerHooks(new RecordingInterceptor(), host);
    expect(report.entryPoints).toEqual([
      "@modelcontextprotocol/sdk/client Client.prototype.callTool (esm)",
      "@modelcontextprotocol/sdk/client Client.prototype.callTool (cjs)",
      "@modelcontextprotocol/sdk/client Client.prototype.request [tools/call] (esm)",
      "@modelcontextprotocol/sdk/client Client.prototype.request [tools/call] (cjs)",
      "@modelcontextprotocol/sdk/server Server.prototype.setRequestHandler [tools/call] (esm)",
      "@modelcontextprotocol/sdk/server Server.prototype.setRequestHandler [tools/call] (cjs)",
      "@modelcontextprotocol/sdk/server Server.prototype._onrequest [tools/call registered before install] (esm)",
      "@modelcontextprotocol/sdk/server Server.prototype._onrequest [tools/call registered before install] (cjs)",
    ]);
    expect(report.detail).toBeUndefined();
    expect(cjsClient.Client).not.toBe(Client);
    for (const prototype of [Client.prototype, cjsClient.Client.prototype]) {
      expect(isWrapped(prototype.callTool, "mcp")).toBe(true);
      expect(isWrapped(prototype.request, "mcp")).toBe(true);
    }
    for (const prototype of [Server.prototype, cjsServer.Server.prototype]) {
      expect(isWrapped(prototype.setRequestHandler, "mcp")).toBe(true);
      expect(isWrapped((prototype as unknown as { _onrequest: unknown })._onrequest, "mcp")).toBe(true);
    }
  });

  it("client: an allowed callTool is decided once (callTool hands over to request) and reaches the server", async () => {
    const interceptor = new RecordingInterceptor();
    await mcpAdapter.registerHooks(interceptor, host);
    const ran: Ran = [];
    const { client, sent } = await connect(lowLevelServer(ran, "bank"));
    const result = await client.callTool({ name: "transfer", arguments: { amount: 5 } });
    expect(textOf(result)).toBe("transfer done");
    expect(ran).toEqual(['bank:transfer {"amount":5}']);
    expect(sent).toContain("tools/call");
    // One client-side decision (not two for callTool + request) and one server-side decision.
    const sides = interceptor.calls.map((call) => [call.metadata?.mcpSide, call.metadata?.mcpEntry]);
    expect(sides).toEqual([
      ["client", "callTool"],
      ["server", undefined],
    ]);
    expect(interceptor.calls[0]).toMatchObject({
      framework: "mcp",
      toolName: "transfer",
      args: { amount: 5 },
      metadata: { mcpServer: "bank", mcpServerVersion: "2.0.0" },
    });
  });

  it("client: a denied callTool never reaches the server and returns an isError result naming the failed condition", async () => {
    const interceptor = new RecordingInterceptor(new Set(["transfer"]));
    await mcpAdapter.registerHooks(interceptor, host);
    const ran: Ran = [];
    const { client, sent } = await connect(lowLevelServer(ran));
    const result = await client.callTool({ name: "transfer", arguments: { amount: 500 } });
    expect(result).toMatchObject({
      isError: true,
      content: [{ type: "text", text: expect.stringContaining('policy "test-policy"') }],
      _meta: { agentAssembly: { reason: "CONDITIONS_DENIED", policy: "test-policy" } },
    });
    expect(textOf(result)).toContain("args.amount lt 100 (actual: 500)");
    expect(CallToolResultSchema.safeParse(result).success).toBe(true);
    expect(ran).toEqual([]);
    expect(sent).not.toContain("tools/call");
    expect(interceptor.calls).toHaveLength(1);
  });

  it("client: the raw request({method: 'tools/call'}) bypass is governed; other requests pass untouched", async () => {
    const interceptor = new RecordingInterceptor(new Set(["transfer"]));
    await mcpAdapter.registerHooks(interceptor, host);
    const ran: Ran = [];
    const { client, sent } = await connect(lowLevelServer(ran));
    const denied = await client.request(
      { method: "tools/call", params: { name: "transfer", arguments: { amount: 500 } } },
      CallToolResultSchema,
    );
    expect(denied.isError).toBe(true);
    expect(textOf(denied)).toContain("CONDITIONS_DENIED");
    expect(sent).not.toContain("tools/call");
    const allowed = await client.request(
      { method: "tools/call", params: { name: "lookup", arguments: { id: "a" } } },
      CallToolResultSchema,
    );
    expect(textOf(allowed)).toBe("lookup done");
    await client.ping();
    expect(ran).toEqual(['bank:lookup {"id":"a"}']);
    expect(
      interceptor.calls.map((call) => [call.toolName, call.metadata?.mcpSide, call.metadata?.mcpEntry]),
    ).toEqual([
      ["transfer", "client", "request"],
      ["lookup", "client", "request"],
      ["lookup", "server", undefined],
    ]);
  });

  it("client: the experimental callToolStream goes through request and is governed too", async () => {
    const interceptor = new RecordingInterceptor(new Set(["transfer"]));
    await mcpAdapter.registerHooks(interceptor, host);
    const ran: Ran = [];
    const { client, sent } = await connect(lowLevelServer(ran));
    const plain: unknown[] = [];
    for await (const message of client.experimental.tasks.callToolStream({
      name: "transfer",
      arguments: { amount: 500 },
    })) {
      plain.push(message);
    }
    expect(plain).toEqual([{ type: "result", result: expect.objectContaining({ isError: true }) }]);
    // With a task the caller expects a CreateTaskResult: the denial arrives as the stream's error.
    const withTask: { type: string; error?: Error }[] = [];
    for await (const message of client.experimental.tasks.callToolStream(
      { name: "transfer", arguments: { amount: 500 } },
      CallToolResultSchema,
      { task: { ttl: 1000 } },
    )) {
      withTask.push(message as { type: string; error?: Error });
    }
    expect(withTask).toHaveLength(1);
    expect(withTask[0]!.type).toBe("error");
    expect(withTask[0]!.error!.message).toContain("args.amount lt 100 (actual: 500)");
    expect(sent).not.toContain("tools/call");
    expect(ran).toEqual([]);
    expect(interceptor.calls.map((call) => call.metadata?.mcpEntry)).toEqual(["request", "request"]);
  });

  it("server: gates tools/call handlers registered after install (McpServer and low-level Server) with session, request id and auth without the token", async () => {
    await mcpAdapter.registerHooks(new RecordingInterceptor(), host);
    const ran: Ran = [];
    const server = bankServer(ran, "bank");
    const { client, serverTransport, clientTransport } = await connect(server);
    (serverTransport as { sessionId?: string }).sessionId = "session-7";
    const send = clientTransport.send.bind(clientTransport);
    clientTransport.send = (message, options) =>
      send(message, {
        ...options,
        authInfo: {
          token: "secret-token",
          clientId: "ops-app",
          scopes: ["pay"],
          expiresAt: 1_900_000_000,
          extra: { pw: "x" },
        },
      });
    // Reinstall: the handler registered under the first installation is now an inactive
    // pass-through, and the second installation governs it through the dispatch path, once.
    await mcpAdapter.unregisterHooks();
    const interceptor = new RecordingInterceptor(new Set(["deploy"]));
    await mcpAdapter.registerHooks(interceptor, host);
    expect(textOf(await client.callTool({ name: "transfer", arguments: { amount: 1 } }))).toBe(
      "transfer done",
    );
    const denied = await client.callTool({ name: "deploy", arguments: { service: "api" } });
    expect(denied.isError).toBe(true);
    expect(ran).toEqual(['bank:transfer {"amount":1}']);
    const serverCalls = interceptor.calls.filter((call) => call.metadata?.mcpSide === "server");
    expect(serverCalls).toHaveLength(1); // the denied deploy was stopped on the client side
    expect(serverCalls[0]).toMatchObject({
      framework: "mcp",
      toolName: "transfer",
      args: { amount: 1 },
      toolCallId: expect.any(String),
      mcpServer: "bank",
      metadata: {
        mcpSide: "server",
        mcpServer: "bank",
        sessionId: "session-7",
        requestId: expect.any(Number),
        authInfo: { clientId: "ops-app", scopes: ["pay"], expiresAt: 1_900_000_000 },
      },
    });
    expect(JSON.stringify(serverCalls[0])).not.toContain("secret-token");
    expect(JSON.stringify(serverCalls[0])).not.toContain("pw");
  });

  it("server: a denial answers the remote client with an isError result, the handler never runs", async () => {
    const ran: Ran = [];
    const server = lowLevelServer(ran, "bank");
    const { client } = await connect(server);
    const interceptor = new RecordingInterceptor(new Set(["transfer"]));
    await mcpAdapter.registerHooks(interceptor, host);
    // Call the server through the transport directly (what a remote client in another process does).
    const raw = await rawToolsCall(client, "transfer", { amount: 500 });
    expect(raw).toMatchObject({
      isError: true,
      content: [{ type: "text", text: expect.stringContaining("test-policy") }],
    });
    expect(ran).toEqual([]);
    expect(interceptor.calls.map((call) => call.metadata?.mcpSide)).toEqual(["server"]);
  });

  it("server: a handler registered after install is wrapped once even when later dispatch sees it", async () => {
    const interceptor = new RecordingInterceptor();
    await mcpAdapter.registerHooks(interceptor, host);
    const ran: Ran = [];
    const server = lowLevelServer(ran, "bank");
    const { client } = await connect(server);
    await rawToolsCall(client, "lookup", { id: "1" });
    await rawToolsCall(client, "lookup", { id: "2" });
    expect(interceptor.calls.map((call) => call.metadata?.mcpSide)).toEqual(["server", "server"]);
    expect(ran).toEqual(['bank:lookup {"id":"1"}', 'bank:lookup {"id":"2"}']);
  });

  it("fails closed with a clear error when a call cannot be translated (nothing is sent)", async () => {
    await mcpAdapter.registerHooks(new RecordingInterceptor(), host);
    const ran: Ran = [];
    const { client, sent } = await connect(lowLevelServer(ran));
    await expect(client.callTool({ name: "" })).rejects.toMatchObject({
      code: "ADAPTER_TRANSLATION_FAILED",
      message: expect.stringContaining("names no tool"),
    });
    expect(sent).not.toContain("tools/call");
  });

  it("lets the server's own errors through unchanged", async () => {
    await mcpAdapter.registerHooks(new RecordingInterceptor(), host);
    const server = new Server({ name: "bank", version: "1" }, { capabilities: { tools: {} } });
    const { CallToolRequestSchema } = await import("@modelcontextprotocol/sdk/types.js");
    server.setRequestHandler(CallToolRequestSchema, async () => {
      throw new RangeError("boom");
    });
    const { client } = await connect(server);
    await expect(client.callTool({ name: "lookup", arguments: {} })).rejects.toThrow(/boom/);
  });

  it("restores every patched method and handler-map entry exactly; 200 install/uninstall cycles stack nothing", async () => {
    const ran: Ran = [];
    const server = lowLevelServer(ran, "bank");
    const map = (server as unknown as { _requestHandlers: Map<string, unknown> })._requestHandlers;
    const entryBefore = map.get("tools/call");
    const { client } = await connect(server);
    for (let i = 0; i < 200; i++) {
      const interceptor = new RecordingInterceptor();
      await mcpAdapter.registerHooks(interceptor, host);
      await mcpAdapter.registerHooks(interceptor, host); // idempotent: no second wrapper
      if (i % 50 === 0) await rawToolsCall(client, "lookup", { id: String(i) });
      await mcpAdapter.unregisterHooks();
    }
    expect(slotsOf(Client.prototype, CLIENT_KEYS)).toEqual(ORIGINALS.esmClient);
    expect(slotsOf(cjsClient.Client.prototype, CLIENT_KEYS)).toEqual(ORIGINALS.cjsClient);
    expect(slotsOf(Server.prototype, SERVER_KEYS)).toEqual(ORIGINALS.esmServer);
    expect(slotsOf(cjsServer.Server.prototype, SERVER_KEYS)).toEqual(ORIGINALS.cjsServer);
    expect(Object.hasOwn(Client.prototype, "request")).toBe(false);
    expect(Object.hasOwn(Server.prototype, "_onrequest")).toBe(false);
    expect(map.get("tools/call")).toBe(entryBefore);

    // One more install: exactly one interception per side and call (nothing stacked by the cycles).
    const interceptor = new RecordingInterceptor();
    await mcpAdapter.registerHooks(interceptor, host);
    await client.callTool({ name: "lookup", arguments: { id: "last" } });
    expect(interceptor.calls.map((call) => call.metadata?.mcpSide)).toEqual(["client", "server"]);
    await mcpAdapter.unregisterHooks();
    await client.callTool({ name: "lookup", arguments: { id: "after" } });
    expect(interceptor.calls).toHaveLength(2);
    expect(ran.at(-1)).toBe('bank:lookup {"id":"after"}');
  });

  it("leaves a pass-through when another library wrapped on top, and governs nothing after uninstall", async () => {
    const interceptor = new RecordingInterceptor(new Set(["transfer"]));
    await mcpAdapter.registerHooks(interceptor, host);
    const ours = Client.prototype.callTool;
    const seenByOther: unknown[] = [];
    Client.prototype.callTool = function (this: Client, ...args: Parameters<typeof ours>) {
      seenByOther.push(args[0].name);
      return ours.apply(this, args);
    } as typeof ours;
    const theirs = Client.prototype.callTool;
    try {
      await mcpAdapter.unregisterHooks();
      expect(Client.prototype.callTool).toBe(theirs);
      const ran: Ran = [];
      const { client } = await connect(lowLevelServer(ran));
      expect(textOf(await client.callTool({ name: "transfer", arguments: { amount: 500 } }))).toBe(
        "transfer done",
      );
      expect(seenByOther).toEqual(["transfer"]);
      expect(interceptor.calls).toEqual([]);
    } finally {
      Client.prototype.callTool = ours;
      Object.defineProperty(Client.prototype, "callTool", ORIGINALS.esmClient.callTool!);
    }
  });
});

/**
 * A `tools/call` sent with the ORIGINAL (unpatched) `request`, as a remote client in another
 * process would send it: only the server side decides.
 */
async function rawToolsCall(client: Client, name: string, args: Record<string, unknown>) {
  const request = Object.getPrototypeOf(Client.prototype).request as Client["request"];
  return request.call(
    client,
    { method: "tools/call", params: { name, arguments: args } },
    CallToolResultSchema,
  );
}
