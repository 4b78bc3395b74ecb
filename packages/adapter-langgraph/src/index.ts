/**
 * `@aa/adapter-langgraph`: Agent Assembly governance for LangGraph.js graphs. Tool calls are
 * governed by `@aa/adapter-langchain`; this package adds graph context, resume idempotency and
 * approvals as LangGraph interrupts.
 */
export {
  createLangGraphAdapter,
  default as langgraphAdapter,
  LANGGRAPH_ADAPTER_NAME,
  LANGGRAPH_SUPPORTED_VERSIONS,
  type LangGraphAdapterOptions,
} from "./adapter.js";
export {
  type ApprovalInterrupt,
  approvalInterrupt,
  type GraphContext,
  graphContextOf,
  graphEventId,
} from "./translate.js";
