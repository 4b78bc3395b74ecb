/**
 * Where the MCP TypeScript SDK can be governed, as data. Each target is patched on every copy of
 * `@modelcontextprotocol/sdk` the host can load (its ESM and CJS builds define different classes).
 */

/** How a patched method receives its arguments and what it governs. */
export type CallShape =
  /** `Client.prototype.callTool(params, resultSchema?, options?)`: the client's tool call. */
  | "client-call-tool"
  /** `Client.prototype.request(request, resultSchema?, options?)`: the raw bypass, `tools/call` only. */
  | "client-request"
  /** `Server.prototype.setRequestHandler(schema, handler)`: `tools/call` handlers registered after install. */
  | "server-set-request-handler"
  /**
   * `Server.prototype._onrequest(request, extra)` (SDK-private dispatch): wraps, on first dispatch, a
   * `tools/call` handler that a live server registered before install.
   */
  | "server-dispatch";

export interface PatchTarget {
  /** Module specifier, resolved from the host application. */
  readonly specifier: string;
  /** Exported class whose prototype holds the method. */
  readonly exportName: string;
  readonly method: string;
  readonly shape: CallShape;
  /** Human-readable entry point, reported with the build it was found in (`(esm)` / `(cjs)`). */
  readonly label: string;
  /** A required target makes installation fail when no copy of it could be patched. */
  readonly required: boolean;
}

export const CLIENT_SPECIFIER = "@modelcontextprotocol/sdk/client/index.js";
export const SERVER_SPECIFIER = "@modelcontextprotocol/sdk/server/index.js";
/** The SDK's own reader of a request schema's `method` literal (zod 3 and zod 4 schemas). */
export const SCHEMA_HELPER_SPECIFIER = "@modelcontextprotocol/sdk/server/zod-json-schema-compat.js";

export const PATCH_TARGETS: readonly PatchTarget[] = [
  {
    specifier: CLIENT_SPECIFIER,
    exportName: "Client",
    method: "callTool",
    shape: "client-call-tool",
    label: "@modelcontextprotocol/sdk/client Client.prototype.callTool",
    required: true,
  },
  {
    specifier: CLIENT_SPECIFIER,
    exportName: "Client",
    method: "request",
    shape: "client-request",
    label: "@modelcontextprotocol/sdk/client Client.prototype.request [tools/call]",
    required: true,
  },
  {
    specifier: SERVER_SPECIFIER,
    exportName: "Server",
    method: "setRequestHandler",
    shape: "server-set-request-handler",
    label: "@modelcontextprotocol/sdk/server Server.prototype.setRequestHandler [tools/call]",
    required: true,
  },
  {
    specifier: SERVER_SPECIFIER,
    exportName: "Server",
    method: "_onrequest",
    shape: "server-dispatch",
    label:
      "@modelcontextprotocol/sdk/server Server.prototype._onrequest [tools/call registered before install]",
    required: false,
  },
];

/** The method of the MCP request that calls a tool. */
export const TOOLS_CALL = "tools/call";

/** The package whose installed version must satisfy the adapter's `supportedVersions`. */
export const TARGET_PACKAGE = "@modelcontextprotocol/sdk";
