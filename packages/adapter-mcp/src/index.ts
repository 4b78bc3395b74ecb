/**
 * `@aa/adapter-mcp`: Agent Assembly governance for tool calls made through the MCP TypeScript SDK,
 * client side and server side. Installed automatically by `initAssembly()` when the app depends on
 * this package.
 */
export {
  createMcpAdapter,
  default as mcpAdapter,
  MCP_ADAPTER_NAME,
  MCP_SUPPORTED_VERSIONS,
  type McpAdapterOptions,
} from "./adapter.js";
export { type CallShape, PATCH_TARGETS, type PatchTarget } from "./patch-targets.js";
export {
  clientToolCall,
  type DeniedToolResult,
  denialText,
  deniedToolResult,
  FRAMEWORK,
  isGovernanceError,
  serverToolCall,
} from "./translate.js";
