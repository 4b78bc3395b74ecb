/**
 * Public types of @aa/engine: the decision service that @aa/core (embedded mode), the gateway and
 * the CLI use. This file is the contract; implementations live beside it.
 */
import type { JsonWebKey } from "node:crypto";
import type {
  CompiledPolicy,
  ConditionResult,
  PolicyDocument,
  Principal as PolicyPrincipal,
} from "@aa/policy";

/** `closed`: calls are evaluated; `open`: every call is denied; `half-open`: one probe is evaluated. */
export type CircuitState = "closed" | "open" | "half-open";

/** Circuit breaker settings (`openEngine({ circuitBreaker })`). */
export interface CircuitBreakerOptions {
  /** Failures within `windowMs` that open the circuit. Default 10. `0` disables the breaker. */
  threshold?: number;
  /** The sliding window failures are counted in, in ms. Default 60 000. */
  windowMs?: number;
  /** How long an open circuit denies every call before a probe is let through, in ms. Default 30 000. */
  coolDownMs?: number;
}

/** What a budget counts: executed calls, LLM tokens, or cost (in whatever unit the caller uses). */
export type BudgetKind = "calls" | "tokens" | "cost";

/** The end user a call is made for (`{ userId, email?, tenant?, scopes? }`, defined by @aa/policy). */
export type Principal = PolicyPrincipal;

/** What a rate limit counts per: the user (per tenant), the calling agent (per tenant), or the tenant. */
export type RateLimitScope = "user" | "agent" | "tenant";

/** One rate limit: at most `limit` admitted calls per fixed window of `windowMs`. */
export interface RateLimit {
  limit: number;
  windowMs: number;
}

/** Rate limits (`openEngine({ rateLimits })` or a policy file's `rate_limits:`); see docs/identity.md. */
export interface RateLimitOptions {
  /** Calls made for one user, by every agent and sub-agent acting for them. */
  user?: RateLimit;
  /** Calls of one agent. */
  agent?: RateLimit;
  /** Calls made in one tenant. */
  tenant?: RateLimit;
}

/** One budget: at most `limit` per fixed window of `windowMs` (the window starts with first use). */
export interface BudgetLimit {
  limit: number;
  windowMs: number;
}

/** Per-agent budgets (`openEngine({ budgets })`); see docs/controls.md. */
export interface BudgetOptions {
  /** Executed calls per agent per window; over it, calls are denied `BUDGET_EXCEEDED`. */
  calls?: BudgetLimit;
  /** LLM tokens per agent per window, reserved with `reserveTokens` and reconciled after the call. */
  tokens?: BudgetLimit;
  /** Cost per agent per window (any unit, e.g. USD), reserved and reconciled like tokens. */
  cost?: BudgetLimit;
  /** Limits for particular agents; a kind not named here falls back to the defaults above. */
  perAgent?: Record<string, { calls?: BudgetLimit; tokens?: BudgetLimit; cost?: BudgetLimit }>;
  /** An unreconciled reservation is released after this many ms. Default 300 000. */
  reservationTtlMs?: number;
}

/** An agent's use of one budget in its current window. */
export interface BudgetUsage {
  limit: number;
  windowMs: number;
  /** Counted in the current window (executed calls; reconciled tokens or cost). */
  used: number;
  /** Held by open reservations (tokens and cost only). */
  reserved: number;
  /** When the current window resets; absent before the first use. */
  resetsAt?: string;
}

/** Tokens and cost held for one LLM call until `reconcileTokens`. */
export interface TokenReservation {
  id: string;
  agentId: string;
  tokens: number;
  cost: number;
  /** When the reservation is released if not reconciled. */
  expiresAt: string;
}

/** One part of the posture score (0-25) with a short explanation. */
export interface PostureComponent {
  score: number;
  detail: string;
}

/** The governance posture (`engine.posture()`); definitions in docs/controls.md. */
export interface Posture {
  /** 0-100: the sum of the four components, rounded. */
  score: number;
  components: {
    /** Share of evaluated actions that matched a named policy rather than the default deny. */
    policyCoverage: PostureComponent;
    /** Share of approvals decided by a reviewer, against expired and long-pending ones. */
    approvalHygiene: PostureComponent;
    /** One minus the share of denied actions. */
    anomalyRate: PostureComponent;
    /** 25 when `verify()` passes and the policy is intact, 0 otherwise. */
    chainIntegrity: PostureComponent;
  };
  /** Whether the enforced policy is the recorded one (`tampered`: every call is denied). */
  policyIntegrity: PolicyIntegrity;
  /** The recent records the first three components were computed over. */
  window: { records: number; from?: string; to?: string };
}

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
  | "DELEGATION_INVALID"
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
  /** MCP server the tool belongs to (policies: `tool.mcpServer`). */
  mcpServer?: string;
  traceId?: string;
  /** Idempotency key: a retry with the same key returns the first decision and writes nothing. */
  eventId?: string;
  /** `observe`: the call is allowed, the would-be decision is recorded as a shadow event. */
  enforcementMode?: EnforcementMode;
  /** Dry run (canI): evaluate only, no audit record, no approval. */
  dryRun?: boolean;
  /** Set by fail-open paths so the audit record carries the marker. */
  failOpen?: boolean;
  /**
   * Agent ids from the root agent down to `agent.id` (delegation), for trusted in-process callers
   * that track delegation themselves. Default `[agent.id]`. Ignored when `delegationToken` is set.
   */
  delegationChain?: string[];
  /**
   * A delegation token (`engine.delegate`): the call is attributed to the token's child agent,
   * limited by its capabilities, and its chain comes from the registry. `agent.id` must be that
   * child or one of its ancestors (the holder presenting it). A token that does not verify, or a
   * delegation revoked or expired, denies the call (`DELEGATION_INVALID`, `DELEGATION_REVOKED`,
   * `DELEGATION_EXPIRED`); an action outside the capabilities denies `NOT_DELEGATED`.
   */
  delegationToken?: string;
  /** The end user the call is made for (policies: `user.*`; audit: `user`; rate limits per user). */
  principal?: Principal;
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
  /**
   * Only records with this `trace_id` (e.g. an `assembly.trace()`'s W3C id). No index: the store
   * scans the chain from the cursor, so prefer a recent cursor on a long chain (docs/audit.md).
   */
  traceId?: string;
  /**
   * `"asc"` (default): oldest first, from the start of the chain. `"desc"`: newest first, from the
   * head; each `nextCursor` continues with older records. A cursor is only valid with the order
   * that returned it. The newest page reads the (org, seq) index backwards, so it costs the same
   * at any chain length.
   */
  order?: "asc" | "desc";
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

/**
 * How far a long pass over the chain has got: `checked` of `total` records verified (or exported).
 * `total` is the chain size read when the pass starts (raised to `checked` if other writers
 * append meanwhile).
 */
export interface ChainProgress {
  checked: number;
  total: number;
}

/** Options of `Engine.verify()` and `Engine.exportAudit()`. */
export interface ChainPassOptions {
  /**
   * Called once per chunk of records (not per record), with non-decreasing `checked`; the last
   * call of a complete pass has `checked === total`. Absent: no progress is tracked at all.
   */
  onProgress?: (progress: ChainProgress) => void;
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
  /** When a reviewer (or the clock) decided it. */
  decidedAt?: string;
  /** When the approved call was released (an approval releases exactly one call). */
  consumedAt?: string;
}

/** Options to open an engine. */
export interface EngineOptions {
  /** The policy to enforce: a compiled policy or a validated document. */
  policy: CompiledPolicy | PolicyDocument;
  /** `":memory:"`, a SQLite file path, or a `postgres://` URL. Default `.aa/assembly.db`. */
  store?: string;
  /** Tenant / org whose chain this engine writes. Default `"default"`. */
  orgId?: string;
  /** Sign a checkpoint every this many records (and on close). Default 1000. */
  checkpointInterval?: number;
  /**
   * SQLite only: seal and commit large concurrent batches (32 records or more) on a worker thread
   * with its own connection, two batches in flight, while this thread decides the next callers.
   * Lone callers still commit on this thread. It about halves this thread's CPU per event under
   * heavy concurrency and costs ~10 % more CPU in total, so it raises throughput only where a core
   * is free for the worker. Default `false`. See docs/audit.md (Performance).
   */
  appendWorker?: boolean;
  /**
   * When queued audit appends are committed together. `"tick"` (default): at the end of the current
   * tick (a microtask), so a lone caller pays no timer: right for an agent process. `"io"`: after
   * the event loop's I/O phase (`setImmediate`), so decisions for requests that arrived on many
   * sockets in the same poll share one transaction: right for a server (the gateway uses it).
   * Durability is the same either way: a caller is answered after its record is committed.
   */
  groupCommit?: "tick" | "io";
  /** Mode for requests that do not set one. Default `enforce`. */
  enforcementMode?: EnforcementMode;
  /**
   * Per-agent circuit breaker: opens after `threshold` failures (denials and `failure` outcomes)
   * within `windowMs`, denies with `CIRCUIT_OPEN` for `coolDownMs`, then evaluates one probe.
   * Defaults 10 in 60 000 ms, cool-down 30 000 ms; `threshold: 0` disables it. See docs/controls.md.
   */
  circuitBreaker?: CircuitBreakerOptions;
  /**
   * How often (ms) the engine re-reads operator containment from a SQLite or PostgreSQL store, so a
   * `aa agents contain` in another process takes effect here. Default 500; at least 10.
   */
  controlsRefreshMs?: number;
  /**
   * PostgreSQL: how often (ms) at most this engine deletes shared counters whose window has ended
   * (rate limits, the calls budget; docs/controls.md), in the background. Default 60 000; at least 10.
   */
  counterSweepMs?: number;
  /**
   * How often (ms) event subscribers re-read a SQLite or PostgreSQL store for records other
   * processes appended. On PostgreSQL replicas are also pushed a hint after every commit
   * (LISTEN/NOTIFY), so this is only the fallback for a lost hint. Default 250; at least 10.
   */
  eventsPollMs?: number;
  /**
   * Per-agent budgets of executed calls, tokens and cost, each in fixed windows, kept in this
   * process's memory. Over the calls budget a call is denied `BUDGET_EXCEEDED`; a token/cost
   * reservation that does not fit throws `BUDGET_EXCEEDED`. No budget by default.
   */
  budgets?: BudgetOptions;
  /**
   * Rate limits per user, agent and tenant, in fixed windows, kept in this process's memory. Over a
   * limit a call is denied `RATE_LIMITED`. Default: the policy file's `rate_limits:` section.
   */
  rateLimits?: RateLimitOptions;
  /**
   * What opening does when the chain's last recorded policy is not `policy` (a process restarted
   * with an edited policy file). `"record"` (default): the policy given is the operator's, so the
   * change is recorded as a `policy.changed` record (agent `engine.open`) before the first
   * decision. `"none"`: nothing is recorded; the caller checks the policy against the chain itself
   * (`recordedPolicies()`, `markPolicyTampered()`), as the gateway does for its stored policies.
   */
  policyChangeAtOpen?: "record" | "none";
}

/**
 * Whether the policy an engine enforces can be trusted (`engine.policyIntegrity`). `tampered`: the
 * policy was found changed without a recorded policy change (docs/policy.md, Tampering); every
 * decision is then denied with `POLICY_TAMPERED` until a policy change is recorded.
 */
export type PolicyIntegrity =
  | { state: "intact"; policyHash: string }
  | {
      state: "tampered";
      /** The policy the engine held when the tampering was found (recorded on the denials). */
      policyHash: string;
      /** The hash the tampered copy claims (for a gateway: the stored row's `policy_hash`). */
      storedHash: string;
      /** The chain's newest recorded policy change, or null when none is recorded. */
      recordedHash: string | null;
      detectedAt: string;
      /** What is wrong and how to fix it; every denial carries it. */
      message: string;
    };

/** What a caller that found a tampered policy reports to `engine.markPolicyTampered()`. */
export interface PolicyTamperFinding {
  storedHash: string;
  recordedHash: string | null;
  /** What is wrong and how to fix it, in one sentence or two; every denial carries it. */
  message: string;
  /** Who found it (the audit record's agent). Default `"engine"`. */
  detectedBy?: string;
}

/** The policy changes an org's chain records (`engine.recordedPolicies()`). */
export interface RecordedPolicies {
  /** The newest `policy.changed` record's policy hash and chain position, if any. */
  newest: { hash: string; seq: number; openedWith: boolean } | undefined;
  /** Every policy hash a `policy.changed` record carries. */
  hashes: ReadonlySet<string>;
}

/** An agent's controls as this engine sees them (`engine.agentState(agentId)`). */
export interface AgentState {
  agentId: string;
  /** True while an operator has contained the agent (every call denied with `CIRCUIT_OPEN`). */
  contained: boolean;
  containedBy?: string;
  containedReason?: string | null;
  containedAt?: string;
  /** This process's circuit breaker for the agent. */
  cbState: CircuitState;
  /** Failures counted in the current window while closed. */
  cbFailures: number;
  /** While open: when the circuit half-opens. */
  cbOpenUntil?: string;
  /** Usage of each configured budget in its current window (only the kinds configured). */
  budgets: Partial<Record<BudgetKind, BudgetUsage>>;
}

/** An operator's latest kill-switch transition for an agent (`engine.listAgentControls()`). */
export interface AgentControl {
  agentId: string;
  contained: boolean;
  changedBy: string;
  reason: string | null;
  changedAt: string;
}

/** One audit record as `audit()` returns it: the stored record plus its hash and latest outcome. */
export interface AuditEvent {
  id: string;
  kind:
    | "action"
    | "approval.approved"
    | "approval.denied"
    | "approval.expired"
    | "approval.released"
    | "policy.changed"
    | "policy.tampered"
    | "agent.contained"
    | "agent.released"
    | "delegation.created"
    | "delegation.revoked"
    | "delegation.expired";
  seq: number;
  time: string;
  org: string;
  agent: string;
  delegation: string[];
  action_type: string;
  tool: string | null;
  framework: string | null;
  /** Redacted arguments. */
  args: unknown;
  /** `sha256:<hex>` of the RFC 8785 JSON of the redacted arguments. */
  args_hash: string;
  metadata: Record<string, unknown> | null;
  data_accessed: unknown;
  status: ActionStatus | null;
  denial_reason: DenialReasonCode | null;
  policy_name: string | null;
  policy_hash: string;
  conditions: ConditionResult[];
  approval_id: string | null;
  trace_id: string | null;
  tool_call_id: string | null;
  mode: EnforcementMode;
  shadow: ActionResult["shadow"] | null;
  fail_open: boolean;
  reason: string | null;
  redaction_rules: string[];
  prev_hash: string;
  hash: string;
  /** `sub-agent` when the call came through a delegation (`delegation` has more than one agent). */
  tier: "agent" | "sub-agent";
  /** The end user the call was made for, or null. */
  user: { id: string; email: string | null; tenant: string | null } | null;
  outcome?: Outcome & { updatedAt: string };
}

/** Realtime event types (docs/events.md); `anomaly.detected` is emitted when a tampered policy is found. */
export type EngineEventType =
  | "action.denied"
  | "action.executed"
  | "approval.requested"
  | "approval.resolved"
  | "delegation.created"
  | "delegation.expired"
  | "delegation.revoked"
  | "policy.changed"
  | "anomaly.detected"
  | "enforcement.triggered";

/** One realtime event, projected from the audit record `id` at chain position `seq`. */
export interface EngineEvent {
  /** The audit record's id (one record may yield two events with the same id, e.g. a `CIRCUIT_OPEN` denial). */
  id: string;
  /** The record's position in the chain; resume with `subscribe(cb, { after: seq })`. */
  seq: number;
  type: EngineEventType;
  time: string;
  /** The record's agent (for approval resolutions: the reviewer; see docs/audit.md). */
  agentId: string;
  actionType: string;
  /**
   * From the record: `kind`, `status`, `denialReason`, `policyName`, `approvalId`, `reason`, `mode`,
   * `tool`, `userId` (the end user, or null); plus `resolution` (approved/denied/expired) on `approval.resolved` and `trigger`
   * (`CIRCUIT_OPEN`, `BUDGET_EXCEEDED`, `RATE_LIMITED`, `POLICY_TAMPERED`, `agent.contained`, `agent.released`) on
   * `enforcement.triggered` and `POLICY_TAMPERED` (with `storedHash`, `recordedHash`) on `anomaly.detected`.
   */
  data: Record<string, unknown>;
}

export interface SubscribeOptions {
  /** Only these event types (default: all). */
  events?: EngineEventType[];
  /** Only events whose `agentId` is this agent or one of these agents. */
  agentFilter?: string | string[];
  /** Deliver records with `seq > after` (resume); default: the chain head when subscribing (only new events). */
  after?: number;
}

export interface Subscription {
  /** The seq of the last record this subscription has processed; pass it as `after` to resume. */
  readonly lastSeq: number;
  /** Stops delivery (an event already being delivered completes). */
  unsubscribe(): void;
}

/** Who delegates: a root agent (no token) or a delegated agent presenting its token. */
export interface DelegationParent {
  agentId: string;
  /** Required when `agentId` acts under a delegation itself (a child delegating further). */
  delegationToken?: string;
}

/** What a child may do and for how long (`engine.delegate`). */
export interface DelegateOptions {
  /** Action-type globs (policy `action` syntax); each must be covered by the parent's capabilities. */
  capabilities: string[];
  /** Lifetime in seconds, 1 to 86 400, never past the parent's expiry. Default: 3600, or the parent's remaining time if shorter. */
  ttlSeconds?: number;
}

export type DelegationState = "active" | "revoked" | "expired";

/** A delegation as the registry holds it. */
export interface Delegation {
  /** `dlg_` + 128 random bits (base64url); the token's `jti`. */
  id: string;
  name: string;
  /** The child agent id: `<parent agent id>/<name>`. */
  agentId: string;
  parentAgentId: string;
  /** The parent's own delegation; null when the parent is a root agent. */
  parentDelegationId: string | null;
  capabilities: string[];
  issuedAt: string;
  expiresAt: string;
  /** `revoked` also when an ancestor was revoked; `expired` once `expiresAt` has passed. */
  state: DelegationState;
  revokedAt?: string;
  revokedBy?: string;
  /** Agent ids from the root agent down to `agentId`. */
  chain: string[];
  /** 1 for a root agent's child, 2 for a grandchild, ... */
  depth: number;
}

/** A new delegation and the token its child presents (`delegationToken`). */
export interface DelegationGrant {
  delegation: Delegation;
  /** Compact EdDSA JWT (`typ` aa-delegation+jwt, `aud` the org), verifiable with `jwks()`. */
  token: string;
}

/** Which delegations `listDelegations` returns. */
export interface DelegationFilter {
  /** With `role`: whose delegations. Without it: every delegation of the org. */
  agentId?: string;
  /** `parent`: delegations `agentId` issued; `child`: delegations `agentId` holds; `ancestor`: every delegation below `agentId`. */
  role?: "parent" | "child" | "ancestor";
  /** Only delegations that are active now. */
  activeOnly?: boolean;
}

/** Where `exportAudit` writes: a file path or a writable stream (e.g. `process.stdout`). */
export type ExportTarget = string | NodeJS.WritableStream;

/**
 * The decision service. Every method is safe to call concurrently. An error thrown by any
 * method is an `EngineError` with a stable `code`.
 */
export interface Engine {
  readonly policyHash: string;
  /** Decide one call: evaluate, redact, record (committed before it resolves when allowed). */
  decide(request: DecisionRequest): Promise<ActionResult>;
  /**
   * Wait until a pending approval is decided or expires. Decisions made through this engine wake
   * the wait at once; decisions by another process are seen by reading the store every
   * `pollIntervalMs` (default 250, at least 10).
   */
  awaitApproval(
    approvalId: string,
    options?: { timeoutMs?: number; signal?: AbortSignal; pollIntervalMs?: number },
  ): Promise<Approval>;
  getApproval(approvalId: string): Promise<Approval | undefined>;
  listApprovals(filter?: { state?: ApprovalState }): Promise<Approval[]>;
  approve(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  report(auditEventId: string, outcome: Outcome, agentId: string): Promise<void>;
  audit(query?: AuditQuery): Promise<AuditPage<AuditEvent>>;
  /** Re-checks every record's hash and link and every signed checkpoint; `onProgress` reports per chunk. */
  verify(options?: ChainPassOptions): Promise<VerifyResult>;
  close(): Promise<void>;
  /** Releases an approved call exactly once (appends its `executed` record); a second call → APPROVAL_ALREADY_USED. */
  releaseApproval(approvalId: string, agentId: string): Promise<ActionResult>;
  /** Signed receipt (compact JWS) for an executed action, with its outcome once reported. */
  receipt(auditEventId: string): Promise<string>;
  /** Public keys (active and retired) that sign receipts and checkpoints. */
  jwks(): { keys: JsonWebKey[] };
  /** JSONL export of the chain, outcomes, checkpoints and JWKS, for offline `verifyExport`. */
  exportAudit(
    target: ExportTarget,
    options?: ChainPassOptions,
  ): Promise<{ records: number; outcomes: number; checkpoints: number }>;
  /** Rotates the key that signs checkpoints and receipts; old public keys stay in `jwks()`. Returns the new kid. */
  rotateSigningKey(): Promise<string>;
  /** Replaces the policy, recording a `policy.changed` audit record. */
  setPolicy(policy: CompiledPolicy | PolicyDocument, changedBy?: string): Promise<void>;
  /**
   * Adopts a policy another process already recorded with `setPolicy` (the chain's newest
   * `policy.changed` record must carry its hash; with `{ newest: false }` any such record);
   * appends nothing. False when it does not.
   */
  adoptRecordedPolicy(
    policy: CompiledPolicy | PolicyDocument,
    options?: { newest?: boolean },
  ): Promise<boolean>;
  /** Whether the enforced policy can be trusted; `tampered` while every call is denied `POLICY_TAMPERED`. */
  readonly policyIntegrity: PolicyIntegrity;
  /** The policy changes the org's chain records (read incrementally: each call reads only new records). */
  recordedPolicies(): Promise<RecordedPolicies>;
  /**
   * Fails closed on a policy found changed behind the audit's back: from now on every decision is
   * denied `POLICY_TAMPERED` with `finding.message`, and one `policy.tampered` record is appended
   * per distinct finding. Cleared by `setPolicy` or by `adoptRecordedPolicy` adopting a policy.
   */
  markPolicyTampered(finding: PolicyTamperFinding): Promise<void>;
  /** Operator kill switch: every call of the agent (and of agents it delegated to) is denied until released. Audited (`agent.contained`). */
  contain(agentId: string, operator: string, reason: string): Promise<AgentControl>;
  /** Lifts a containment (`agent.released`); an agent may not release itself (`SELF_RELEASE_FORBIDDEN`). */
  release(agentId: string, operator: string, reason: string): Promise<AgentControl>;
  /** The agent's containment and circuit-breaker state as this engine enforces it. */
  agentState(agentId: string): AgentState;
  /** Every agent an operator has contained or released, with its latest transition. */
  listAgentControls(): Promise<AgentControl[]>;
  /**
   * Reserves tokens and/or cost for an LLM call of `agentId` before making it; throws
   * `BUDGET_EXCEEDED` when used + reserved + estimate would pass a budget.
   */
  reserveTokens(agentId: string, estimate: { tokens?: number; cost?: number }): TokenReservation;
  /** Replaces a reservation by what the call used; `RESERVATION_NOT_FOUND` once reconciled or expired. */
  reconcileTokens(reservationId: string, actual: { tokens?: number; cost?: number }): void;
  /** Posture score 0-100 over the last 10 000 records plus chain verification (docs/controls.md). */
  posture(): Promise<Posture>;
  /**
   * Realtime events projected from the audit chain, in seq order, at least once (docs/events.md).
   * Appends by this engine wake the subscription at once; appends by other processes on the same
   * SQLite or PostgreSQL store arrive within a poll (250 ms). A callback that throws (or rejects)
   * is reported with `process.emitWarning` and delivery continues.
   */
  subscribe(callback: (event: EngineEvent) => unknown, options?: SubscribeOptions): Promise<Subscription>;
  /**
   * Creates a child agent `<parent.agentId>/<name>` that acts for the parent within `capabilities`
   * (a subset of the parent's: `CAPABILITY_ESCALATION` otherwise) until `ttlSeconds` pass (at most
   * 86 400 and never past the parent's expiry: `DELEGATION_TTL_EXCEEDED`). Audited
   * (`delegation.created`). `DELEGATION_EXISTS` while the same child id has an active delegation.
   */
  delegate(parent: DelegationParent, name: string, options: DelegateOptions): Promise<DelegationGrant>;
  /**
   * Checks a token as `decide` does (signature, alg, typ, aud, registry, chain, expiry) and returns
   * its delegation. Throws `DELEGATION_INVALID` (401), `DELEGATION_EXPIRED` (401) or `DELEGATION_REVOKED` (403).
   */
  verifyDelegation(token: string): Promise<Delegation>;
  /**
   * Revokes a delegation and every delegation below it (one `delegation.revoked` record each);
   * processes sharing the store deny their calls within `controlsRefreshMs`. Revoking a revoked
   * delegation returns it unchanged. With `options.agentId`, that agent must be the delegation's
   * child or one of its ancestors (`FORBIDDEN` otherwise).
   */
  revokeDelegation(
    delegationId: string,
    revokedBy: string,
    options?: { agentId?: string },
  ): Promise<Delegation>;
  /** The org's delegations, oldest first, filtered. */
  listDelegations(filter?: DelegationFilter): Promise<Delegation[]>;
}
