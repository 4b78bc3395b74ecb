/**
 * `@aa/adapter-openai-agents`: Agent Assembly governance for the OpenAI Agents SDK's function tools.
 * Installed automatically by `initAssembly()` when the app depends on this package.
 */
export {
  createOpenAIAgentsAdapter,
  default as openAIAgentsAdapter,
  OPENAI_AGENTS_ADAPTER_NAME,
  OPENAI_AGENTS_SUPPORTED_VERSIONS,
} from "./adapter.js";
export {
  approveInterruption,
  gateApprovalFor,
  type InterruptionLike,
  type ReviewerGate,
  type ReviewOutcome,
  type RunStateLike,
  rejectInterruption,
} from "./approvals.js";
export { GUARDRAIL_NAME } from "./govern-tool.js";
export { PATCH_TARGET, REEXPORTING_PACKAGES, TARGET_PACKAGE } from "./patch-targets.js";
export {
  denialText,
  eventIdFor,
  FRAMEWORK,
  isGovernanceError,
  parseArguments,
  toToolCall,
} from "./translate.js";
