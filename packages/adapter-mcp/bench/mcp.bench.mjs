// Overhead of governing MCP tool calls, in one run: a client and a low-level server talking over
// InMemoryTransport in this process, bare against the same call (a) through the patches with a
// pass-through interceptor (the adapter's own share, both sides), (b) governed on the server side
// only (the client sends with the unpatched request, as a remote client would), (c) governed on both
// sides (two decisions: client and server are both in this process), both with a `:memory:` store.
import { createHostContext, initAssembly } from "@aa/core";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import { CallToolRequestSchema, CallToolResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { measureAsync, table, us, withAdapterOnly, withGovernance } from "../../../scripts/bench-util.mjs";
import { mcpAdapter } from "../dist/index.js";

const ROOT = new URL("..", import.meta.url).pathname;
const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    { name: "adds", action: "add", effect: "allow", when: [{ field: "args.a", op: "lt", value: 1000 }] },
  ],
};
const params = { name: "add", arguments: { a: 1, b: 2 } };
const FAST = { iterations: 10_000, warmup: 2_000 };

const server = new Server({ name: "calc", version: "1.0.0" }, { capabilities: { tools: {} } });
server.setRequestHandler(CallToolRequestSchema, async (request) => ({
  content: [{ type: "text", text: String(request.params.arguments.a + request.params.arguments.b) }],
}));
const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
await server.connect(serverTransport);
const client = new Client({ name: "bench", version: "1.0.0" });
await client.connect(clientTransport);

const unpatchedRequest = Object.getPrototypeOf(Client.prototype).request;
const callTool = () => client.callTool(params);
const remoteCall = () =>
  unpatchedRequest.call(client, { method: "tools/call", params }, CallToolResultSchema);

const adapterOnly = (fn) => withAdapterOnly(mcpAdapter, createHostContext(ROOT), fn);

const governed = (fn) =>
  withGovernance(initAssembly, { policy: POLICY, store: ":memory:", adapters: [mcpAdapter], root: ROOT }, fn);

const bare = await measureAsync(callTool, FAST);
const bareRemote = await measureAsync(remoteCall, FAST);
const patchOnly = await adapterOnly(() => measureAsync(callTool, FAST));
const serverOnly = await governed(() => measureAsync(remoteCall, FAST));
const bothSides = await governed(() => measureAsync(callTool, FAST));
const bareAfter = await measureAsync(callTool, FAST);

const row = (name, s, base, note) => ({
  case: name,
  p50: us(s.p50),
  p99: us(s.p99),
  "added p50": base ? us(s.p50 - base.p50) : "",
  "ratio p50": base ? (s.p50 / base.p50).toFixed(2) : "1.00",
  note: note ?? "",
});
table([
  row("bare client.callTool (InMemoryTransport)", bare),
  row("adapter only, both sides (pass-through interceptor)", patchOnly, bare, "the adapter's share"),
  row("bare raw tools/call request (as a remote client sends it)", bareRemote),
  row(
    "(b) governed server side only (:memory:)",
    serverOnly,
    bareRemote,
    "one decision, vs the bare raw request",
  ),
  row("(c) governed client + server in one process (:memory:)", bothSides, bare, "two decisions"),
  row("bare client.callTool (after)", bareAfter, bare, "noise check"),
]);
await client.close();
