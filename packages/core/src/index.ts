/**
 * @aa/core: install Agent Assembly into a Node.js app.
 *
 * @example
 * import { initAssembly } from "@aa/core";
 * await using assembly = await initAssembly({ mode: "sdk-only", agent: { id: "release-bot" } });
 */

export type {
  ActionResult,
  ActionStatus,
  Approval,
  ApprovalState,
  AuditEvent,
  AuditPage,
  AuditQuery,
  BudgetKind,
  BudgetUsage,
  Delegation,
  DelegationState,
  DenialReasonCode,
  EngineEvent,
  EngineEventType,
  Outcome,
  OutcomeStatus,
  Posture,
  PostureComponent,
  SubscribeOptions,
  Subscription,
  VerifyResult,
} from "@aa/engine";
export type { ConditionResult } from "@aa/policy";
export { describeInvalidPermission, hasPermission, intersectScopes, permissionMatches } from "@aa/policy";
export type {
  ActionOptions,
  BudgetReservation,
  CanIResult,
  GateOptions,
  GovernanceClient,
  PolicySummary,
  WhoAmI,
} from "./client.js";
export type { RegisterConfig } from "./config-file.js";
export { CONFIG_ENV_VARIABLES, CONFIG_FILE_NAME, loadRegisterConfig } from "./config-file.js";
export { getAssembly } from "./current.js";
export type {
  DelegatedClient,
  DelegateOptions,
  DelegationSpec,
  DelegationsQuery,
} from "./delegation.js";
export { DISCOVERY_FIELD, discoverAdapters } from "./discovery.js";
export { AssemblyDeniedError, AssemblyError, AssemblyTimeoutError, ConfigurationError } from "./errors.js";
export type {
  ActionRequestBody,
  GatewayClientOptions,
  GatewayIdentity,
  GatewayKey,
} from "./gateway-client.js";
export {
  DEFAULT_REQUEST_TIMEOUT_MS,
  DEFAULT_RETRY_DELAYS_MS,
  GatewayClient,
  gatewayBaseUrl,
} from "./gateway-client.js";
export { createHostContext } from "./host.js";
export type { AdapterStatus, AssemblyContext } from "./init.js";
export { initAssembly } from "./init.js";
export type { ManualInstrumentation } from "./manual.js";
export { manuallyInstrument } from "./manual.js";
export type { AssemblyOptions, EnforcementMode, FailureMode, Mode } from "./options.js";
export { POLICY_FILE_NAMES } from "./options.js";
export type { WrapHandle } from "./patch.js";
export { isWrapped, unwrapped, wrapMethod } from "./patch.js";
export { currentPrincipal, narrowPrincipal, type Principal, runAs } from "./principal.js";
export { AdapterRegistry, BUILT_IN_RANKS, rankOf, THIRD_PARTY_RANK } from "./registry.js";
export type {
  LlmCallContext,
  LlmCallOptions,
  TokenAmounts,
  Trace,
  TraceLlmCall,
  TraceOptions,
  TraceStepSummary,
  TraceSummary,
  TraceToolCall,
} from "./trace.js";
export { usageOfResponse } from "./trace.js";
export type {
  AdapterContext,
  AdapterModuleExport,
  FrameworkAdapter,
  HeldCall,
  HookReport,
  InterceptOptions,
  Interceptor,
  ToolCall,
} from "./types.js";
export { denialText, describeDenial, type GovernanceErrorLike, isGovernanceError } from "./verdicts.js";
