/**
 * Internal contract between core's client/interceptor and the gate behind it (embedded engine now,
 * the gateway's HTTP client later). Not exported from the package root.
 */
import type {
  ActionResult,
  AgentState,
  Approval,
  AuditEvent,
  AuditPage,
  AuditQuery,
  CircuitState,
  DecisionRequest,
  DelegateOptions,
  Delegation,
  DelegationFilter,
  DelegationGrant,
  DelegationParent,
  EngineEvent,
  Outcome,
  Posture,
  SubscribeOptions,
  Subscription,
  TokenReservation,
  VerifyResult,
} from "@aa/engine";
import type { PolicyDocument } from "@aa/policy";

export interface Gate {
  readonly kind: "embedded" | "remote";
  readonly policyHash: string;
  decide(request: DecisionRequest): Promise<ActionResult>;
  awaitApproval(
    approvalId: string,
    options: { timeoutMs: number; signal?: AbortSignal; pollIntervalMs?: number },
  ): Promise<Approval>;
  /**
   * The key's agent as a gateway sees it now (remote gate only; `whoami()` uses it where
   * `agentState` cannot be answered synchronously).
   */
  whoami?(): Promise<{ policyHash: string; cbState?: CircuitState; contained?: boolean }>;
  /** The agent's containment and circuit-breaker state (a remote gate may not offer it). */
  agentState?(agentId: string): AgentState;
  /** Releases an approved action once; a delegated child's approval is released with its token. */
  releaseApproval(approvalId: string, agentId: string, delegationToken?: string): Promise<ActionResult>;
  /** Token/cost budget reservations (a remote gate may not offer them). */
  reserveTokens?(agentId: string, estimate: { tokens?: number; cost?: number }): TokenReservation;
  reconcileTokens?(reservationId: string, actual: { tokens?: number; cost?: number }): void;
  getApproval(approvalId: string): Promise<Approval | undefined>;
  listApprovals(filter?: { state?: Approval["state"] }): Promise<Approval[]>;
  approve(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<Approval>;
  report(auditEventId: string, outcome: Outcome, agentId: string): Promise<void>;
  audit(query?: AuditQuery): Promise<AuditPage<AuditEvent>>;
  verify(): Promise<VerifyResult>;
  /** The org whose chain this gate writes (embedded: exactly one). */
  readonly orgId?: string;
  /** Realtime events from the audit chain (a remote gate may not offer them). */
  subscribe?(callback: (event: EngineEvent) => unknown, options?: SubscribeOptions): Promise<Subscription>;
  /** Delegation (a remote gate may not offer it yet). */
  delegate?(parent: DelegationParent, name: string, options: DelegateOptions): Promise<DelegationGrant>;
  /** `delegationToken`: the acting child's own token (a remote gate sends it so the gateway acts as the child). */
  revokeDelegation?(
    delegationId: string,
    revokedBy: string,
    options?: { agentId?: string; delegationToken?: string },
  ): Promise<Delegation>;
  listDelegations?(filter?: DelegationFilter, options?: { delegationToken?: string }): Promise<Delegation[]>;
  /**
   * Replace the policy in force; the change is recorded in the chain (`policy.changed`). Embedded
   * only: a gateway's policy is its admins' (`PUT /v1/policies`).
   */
  setPolicy?(policy: PolicyDocument, changedBy: string): Promise<void>;
  /** The governance posture score (a remote gate may not offer it). */
  posture?(): Promise<Posture>;
  close(): Promise<void>;
}
