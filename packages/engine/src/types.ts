/**
 * Public types of @aa/engine: the decision service that @aa/core (embedded mode), the gateway and
 * the CLI use. This file is the contract; implementations live beside it.
 */
import type { CompiledPolicy, ConditionResult, PolicyDocument } from "@aa/policy";

/** Final status of a governed action, as the spec names them. */
export type ActionStatus = "executed" | "requested" | "denied";

export type DenialReasonCode =
  | "CONDITIONS_DENIED"
  | "NO_MATCHING_POLICY"
  | "POLICY_TAMPERED"
  | "DENIED_BY_REVIEWER"
  | "APPROVAL_TIMEOUT"
  | "NOT_DELEGATED"
  | "DELEGATION_EXPIRED"
  | "DELEGATION_REVOKED"
  | "CIRCUIT_OPEN"
  | "BUDGET_EXCEEDED"
  | "RATE_LIMITED"
  | "UNAUTHENTICATED"
  | "GATE_UNAVAILABLE";

export type EnforcementMode = "enforce" | "observe" | "disabled";

export interface AgentIdentity {
  id: string;
  name?: string;
}

/** One request to the gate. */
export interface DecisionRequest {
  agent: AgentIdentity;
  actionType: string;
  /** Tool name when the action is a framework tool call. */
  toolName?: string;
  framework?: string;
  args?: unknown;
  metadata?: Record<string, unknown>;
  dataAccessed?: unknown;
  toolCallId?: string;
  traceId?: string;
  /** Idempotency key: a retry with the same key returns the first decision and writes nothing. */
  eventId?: string;
  /** `observe`: the call is allowed, the would-be decision is recorded as a shadow event. */
  enforcementMode?: EnforcementMode;
  /** Dry run (canI): evaluate only, no audit record, no approval. */
  dryRun?: boolean;
  /** Set by fail-open paths so the audit record carries the marker. */
  failOpen?: boolean;
}

/** The gate's answer (spec §5 ActionResult). */
export interface ActionResult {
  status: ActionStatus;
  /** Audit record id (empty for dry runs). */
  auditEventId: string;
  approvalId?: string;
  message?: string;
  /** ISO time at which a pending approval expires. */
  timeoutAt?: string;
  denialReason?: DenialReasonCode;
  policyName?: string;
  policyHash?: string;
  conditionsEvaluated: ConditionResult[];
  /** In observe mode: what enforce mode would have decided. */
  shadow?: { status: ActionStatus; denialReason?: DenialReasonCode; policyName?: string };
}

export type OutcomeStatus = "success" | "failure" | "partial";

export interface Outcome {
  status: OutcomeStatus;
  message?: string;
  metadata?: Record<string, unknown>;
}

export interface AuditQuery {
  cursor?: string;
  limit?: number;
  actionType?: string;
}

export interface AuditPage<T> {
  items: T[];
  nextCursor?: string;
}

export interface VerifyResult {
  chainValid: boolean;
  checked: number;
  firstBrokenAtRowId: string | null;
  /** Why the chain is broken, for people. */
  problem?: string;
}

export type ApprovalState = "pending" | "approved" | "denied" | "expired";

export interface Approval {
  id: string;
  agentId: string;
  actionType: string;
  state: ApprovalState;
  createdAt: string;
  expiresAt: string;
  auditEventId: string;
  policyName?: string;
  decidedBy?: string;
  reason?: string;
}

/** Options to open an engine. */
export interface EngineOptions {
  /** The policy to enforce: a compiled policy or a validated document. */
  policy: CompiledPolicy | PolicyDocument;
  /** `":memory:"`, a SQLite file path, or a `postgres://` URL. Default `.aa/assembly.db`. */
  store?: string;
  /** Tenant / org whose chain this engine writes. Default `"default"`. */
  orgId?: string;
}

/**
 * The decision service. Every method is safe to call concurrently. An error thrown by any
 * method is an `EngineError` with a stable `code`.
 */
export interface Engine {
  readonly policyHash: string;
  /** Decide one call: evaluate, redact, record (committed before it resolves when allowed). */
  decide(request: DecisionRequest): Promise<ActionResult>;
  /** Wait until a pending approval is decided or expires. */
  awaitApproval(approvalId: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<Approval>;
  getApproval(approvalId: string): Promise<Approval | undefined>;
  listApprovals(filter?: { state?: ApprovalState }): Promise<Approval[]>;
  approve(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  report(auditEventId: string, outcome: Outcome, agentId: string): Promise<void>;
  audit(query?: AuditQuery): Promise<AuditPage<unknown>>;
  verify(): Promise<VerifyResult>;
  close(): Promise<void>;
}
