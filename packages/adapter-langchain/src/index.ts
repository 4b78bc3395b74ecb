/**
 * `@aa/adapter-langchain`: Agent Assembly governance for LangChain.js tools.
 * Installed automatically by `initAssembly()` when the app depends on this package; use
 * {@link createLangChainAdapter} to pass options.
 */
export {
  createLangChainAdapter,
  default as langchainAdapter,
  LANGCHAIN_ADAPTER_NAME,
  LANGCHAIN_SUPPORTED_VERSIONS,
  type LangChainAdapterOptions,
} from "./adapter.js";
export { type CallShape, PATCH_TARGETS, type PatchTarget } from "./patch-targets.js";
export { denialText, FRAMEWORK, isGovernanceError, toToolCall } from "./translate.js";
