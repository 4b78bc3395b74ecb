/** Test helpers: the test policy, a recording interceptor, in-process MCP servers and clients. */
import { type AssemblyContext, AssemblyDeniedError, type Interceptor, type ToolCall } from "@aa/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { CallToolRequestSchema, type CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { z } from "zod";

/** The policy every test uses: small transfers allowed, lookups allowed, deploys held for review. */
export const TEST_POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
    {
      name: "lookups-on-the-bank-server",
      action: "lookup",
      effect: "allow",
      when: [{ field: "tool.mcpServer", op: "eq", value: "bank" }],
    },
    { name: "deploys-need-review", action: "deploy", effect: "require_approval" },
  ],
};

/** Records every call and answers per tool name: allow (run) or deny (throw the typed error). */
export class RecordingInterceptor implements Interceptor {
  readonly calls: ToolCall[] = [];
  constructor(private readonly deny: ReadonlySet<string> = new Set()) {}
  async intercept<T>(call: ToolCall, invoke: () => T | Promise<T>): Promise<T> {
    this.calls.push(call);
    if (this.deny.has(call.toolName)) {
      throw new AssemblyDeniedError({
        reason: "CONDITIONS_DENIED",
        policy: "test-policy",
        message: `Agent Assembly denied tool "${call.toolName}" (CONDITIONS_DENIED) by policy "test-policy". Failed conditions: args.amount lt 100 (actual: 500).`,
      });
    }
    return invoke();
  }
}

/** What a server executed, in order: `"<server>:<tool> <args JSON>"`. */
export type Ran = string[];

/** A `McpServer` with `transfer`, `lookup` and `deploy` tools that record each execution. */
export function bankServer(ran: Ran, name = "bank"): McpServer {
  const server = new McpServer({ name, version: "1.0.0" });
  const record = (tool: string, args: unknown): CallToolResult => {
    ran.push(`${name}:${tool} ${JSON.stringify(args)}`);
    return { content: [{ type: "text", text: `${tool} done` }] };
  };
  server.registerTool("transfer", { inputSchema: { amount: z.number() } }, async (args) =>
    record("transfer", args),
  );
  server.registerTool("lookup", { inputSchema: { id: z.string() } }, async (args) => record("lookup", args));
  server.registerTool("deploy", { inputSchema: { service: z.string() } }, async (args) =>
    record("deploy", args),
  );
  return server;
}

/** A low-level `Server` with one raw `tools/call` handler that runs any tool name. */
export function lowLevelServer(ran: Ran, name = "bank"): Server {
  const server = new Server({ name, version: "2.0.0" }, { capabilities: { tools: {} } });
  server.setRequestHandler(CallToolRequestSchema, async (request) => {
    ran.push(`${name}:${request.params.name} ${JSON.stringify(request.params.arguments ?? {})}`);
    return { content: [{ type: "text", text: `${request.params.name} done` }] };
  });
  return server;
}

/** Connect a new client to `server` in-process; `sent` records every method the client put on the wire. */
export async function connect(server: McpServer | Server, clientName = "agent") {
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  const sent: string[] = [];
  const send = clientTransport.send.bind(clientTransport);
  clientTransport.send = (message, options) => {
    if ("method" in message) sent.push(message.method);
    return send(message, options);
  };
  await server.connect(serverTransport);
  const client = new Client({ name: clientName, version: "1.0.0" });
  await client.connect(clientTransport);
  return { client, clientTransport, serverTransport, sent };
}

/** The text of a tool result's first content item. */
export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content;
  return content?.[0]?.text ?? "";
}

/** Audit records of the assembly (first page, enough for a test). */
export async function auditRecords(assembly: AssemblyContext): Promise<Record<string, unknown>[]> {
  const page = await assembly.audit({ limit: 1000 });
  return page.items as unknown as Record<string, unknown>[];
}

/** Wait until `count` approvals are pending. */
export async function pendingApprovals(assembly: AssemblyContext, count = 1) {
  for (;;) {
    const pending = await assembly.listApprovals({ state: "pending" });
    if (pending.length >= count) return pending;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
