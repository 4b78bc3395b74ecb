/**
 * Translation between the MCP SDK's tool-call shapes and the gate: a client `tools/call` request or
 * a server's incoming one becomes a `ToolCall`; a governance error becomes the MCP tool result the
 * model reads (`{content: [{type: "text", text}], isError: true}`).
 */
import type { ToolCall } from "@aa/core";
import { denialText, type GovernanceErrorLike, isGovernanceError } from "@aa/core";

/** Re-exported for callers of this package (they live in @aa/core, shared by every adapter). */
export { denialText, type GovernanceErrorLike, isGovernanceError };

/** Framework name recorded on every call this adapter intercepts. */
export const FRAMEWORK = "mcp";

/** The parts of an SDK `Client` the translation reads. */
export interface ClientLike {
  getServerVersion?(): { name?: unknown; version?: unknown } | undefined;
  transport?: { sessionId?: unknown } | undefined;
}

/** The parts of an SDK `Server` the translation reads (`_serverInfo` is the SDK's own field). */
export interface ServerLike {
  _serverInfo?: { name?: unknown; version?: unknown };
}

/** The parts of the handler's `extra` (`RequestHandlerExtra`) the translation reads. */
export interface RequestExtraLike {
  sessionId?: unknown;
  requestId?: unknown;
  authInfo?: {
    token?: unknown;
    clientId?: unknown;
    scopes?: unknown;
    expiresAt?: unknown;
    resource?: unknown;
  };
}

/** Which client entry point saw the call (recorded as `metadata.mcpEntry`). */
export type ClientEntry = "callTool" | "request";

/** Translate a client-side call: `callTool(params)` or `request({method: "tools/call", params})`. */
export function clientToolCall(client: ClientLike, params: unknown, entry: ClientEntry): ToolCall {
  const { name, args } = toolParams(params);
  const metadata: Record<string, unknown> = { mcpSide: "client", mcpEntry: entry };
  const server = safelyServerVersion(client);
  if (server) {
    const serverName = nonEmptyString(server.name);
    if (serverName !== undefined) metadata.mcpServer = serverName;
    const serverVersion = nonEmptyString(server.version);
    if (serverVersion !== undefined) metadata.mcpServerVersion = serverVersion;
  }
  const sessionId = nonEmptyString(client.transport?.sessionId);
  if (sessionId !== undefined) metadata.sessionId = sessionId;
  const call: ToolCall = { framework: FRAMEWORK, toolName: name, args, metadata };
  if (typeof metadata.mcpServer === "string") call.mcpServer = metadata.mcpServer;
  return call;
}

/**
 * Translate a server-side call: the incoming `tools/call` request and the SDK's `extra`. The
 * bearer token of `extra.authInfo` is never copied: only who the client is and what it may do.
 */
export function serverToolCall(server: ServerLike, request: unknown, extra: unknown): ToolCall {
  const params =
    typeof request === "object" && request !== null ? (request as { params?: unknown }).params : undefined;
  const { name, args } = toolParams(params);
  const metadata: Record<string, unknown> = { mcpSide: "server" };
  const serverName = nonEmptyString(server._serverInfo?.name);
  if (serverName !== undefined) metadata.mcpServer = serverName;
  const serverVersion = nonEmptyString(server._serverInfo?.version);
  if (serverVersion !== undefined) metadata.mcpServerVersion = serverVersion;
  const call: ToolCall = { framework: FRAMEWORK, toolName: name, args, metadata };
  if (serverName !== undefined) call.mcpServer = serverName;
  if (typeof extra === "object" && extra !== null) {
    const { sessionId, requestId, authInfo } = extra as RequestExtraLike;
    const session = nonEmptyString(sessionId);
    if (session !== undefined) metadata.sessionId = session;
    if (typeof requestId === "string" || typeof requestId === "number") {
      metadata.requestId = requestId;
      call.toolCallId = String(requestId);
    }
    const auth = authWithoutSecrets(authInfo);
    if (auth) metadata.authInfo = auth;
  }
  return call;
}

function toolParams(params: unknown): { name: string; args: unknown } {
  if (typeof params !== "object" || params === null) {
    throw new TypeError(`the tools/call request has no params object (got ${describe(params)})`);
  }
  const { name, arguments: args } = params as { name?: unknown; arguments?: unknown };
  const toolName = nonEmptyString(name);
  if (toolName === undefined) {
    throw new TypeError(`the tools/call request names no tool (params.name is ${describe(name)})`);
  }
  // MCP: omitted arguments mean no arguments.
  return { name: toolName, args: args ?? {} };
}

/** `AuthInfo` minus the token and its free-form `extra` (which may hold secrets too). */
function authWithoutSecrets(authInfo: RequestExtraLike["authInfo"]): Record<string, unknown> | undefined {
  if (typeof authInfo !== "object" || authInfo === null) return undefined;
  const out: Record<string, unknown> = {};
  const clientId = nonEmptyString(authInfo.clientId);
  if (clientId !== undefined) out.clientId = clientId;
  if (Array.isArray(authInfo.scopes)) {
    out.scopes = authInfo.scopes.filter((scope): scope is string => typeof scope === "string");
  }
  if (typeof authInfo.expiresAt === "number" && Number.isFinite(authInfo.expiresAt)) {
    out.expiresAt = authInfo.expiresAt;
  }
  if (authInfo.resource instanceof URL) out.resource = authInfo.resource.href;
  else if (typeof authInfo.resource === "string") out.resource = authInfo.resource;
  return out;
}

function safelyServerVersion(client: ClientLike): { name?: unknown; version?: unknown } | undefined {
  try {
    return typeof client.getServerVersion === "function" ? client.getServerVersion() : undefined;
  } catch {
    return undefined;
  }
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "string") return JSON.stringify(value);
  return typeof value;
}

/** The MCP tool result a denied call answers with. */
export interface DeniedToolResult {
  content: [{ type: "text"; text: string }];
  isError: true;
  _meta: { agentAssembly: Record<string, unknown> };
}

/**
 * A denial as an MCP tool result (what `tools/call` returns), so the model reads which rule failed
 * and can correct itself. `_meta.agentAssembly` carries the structured denial for code.
 */
export function deniedToolResult(error: GovernanceErrorLike): DeniedToolResult {
  const agentAssembly: Record<string, unknown> = {
    code: error.code,
    reason: error.reason ?? error.code,
    conditions: error.conditions ?? [],
  };
  if (error.policy !== undefined) agentAssembly.policy = error.policy;
  if (error.approvalId !== undefined) agentAssembly.approvalId = error.approvalId;
  if (error.auditEventId !== undefined) agentAssembly.auditEventId = error.auditEventId;
  return { content: [{ type: "text", text: denialText(error) }], isError: true, _meta: { agentAssembly } };
}
