/**
 * `@aa/adapter-vercel-ai`: Agent Assembly governance for the Vercel AI SDK (`ai` v7).
 * Start the app with `node --import @aa/adapter-vercel-ai/register app.js`; `initAssembly()` then
 * installs the adapter when the app depends on this package. Use {@link createVercelAiAdapter} to
 * pass options and {@link answerGateApproval} to answer a held call at the gate.
 */
export {
  createVercelAiAdapter,
  default as vercelAiAdapter,
  VERCEL_AI_ADAPTER_NAME,
  VERCEL_AI_SUPPORTED_VERSIONS,
  type VercelAiAdapterOptions,
} from "./adapter.js";
export type { ApprovalsMode } from "./approval.js";
export {
  type ApprovalAnswerer,
  answerGateApproval,
  type GateApprovalAnswer,
  gateApprovalIdFor,
} from "./held-calls.js";
export {
  AGENT_TARGET,
  EXPORT_TARGETS,
  type ExportTarget,
  exportLabel,
  type PrototypeTarget,
} from "./patch-targets.js";
export { type ApprovalStatus, composeStatuses, FRAMEWORK, toToolCall } from "./translate.js";
