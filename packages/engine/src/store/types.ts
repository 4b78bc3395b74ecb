/**
 * The storage contract every audit store (memory, SQLite, PostgreSQL) implements. Stores are
 * dumb and transactional: the engine decides, stores persist. Chain linking happens inside the
 * store's write transaction because only there is the chain head known for certain (another
 * process may share a SQLite file, several gateways may share a PostgreSQL database).
 */

import type { EncodedRecord, RecordFields } from "../chain/record.js";
import type { KeyringData } from "../crypto/keyring.js";
import type { HmacKeySetData } from "../crypto/secret.js";
import type { EngineError } from "../errors.js";
import type { ApprovalState } from "../types.js";

/** An approval as persisted. */
export interface ApprovalRow {
  id: string;
  org: string;
  agentId: string;
  actionType: string;
  state: ApprovalState;
  createdAt: string;
  expiresAt: string;
  auditEventId: string;
  policyName: string | null;
  /** SHA-256 of (agent, action, redacted args, policy hash). */
  bindingHash: string;
  decidedBy: string | null;
  reason: string | null;
  decidedAt: string | null;
  consumedAt: string | null;
  /** JSON snapshot of the redacted request, used to write the release record. */
  request: string;
}

/** A conditional or unconditional write applied in the same transaction as a record. */
export type StoreEffect =
  | { type: "approval.insert"; approval: ApprovalRow }
  /** Only applies while the approval is `pending`; otherwise the item fails with APPROVAL_NOT_PENDING. */
  | {
      type: "approval.transition";
      approvalId: string;
      to: "approved" | "denied" | "expired";
      decidedBy: string | null;
      reason: string | null;
      at: string;
    }
  /** Only applies to an `approved`, unconsumed approval; otherwise APPROVAL_ALREADY_USED / APPROVAL_NOT_APPROVED. */
  | { type: "approval.consume"; approvalId: string; at: string }
  | { type: "idempotency.insert"; key: string; fingerprint: string; result: string }
  /** Unconditional: records an operator's containment (or release) of an agent. */
  | { type: "agent.control"; control: AgentControlRow }
  /**
   * Registers a delegation. Fails with DELEGATION_EXISTS while another delegation of the same child
   * agent id is active at `delegation.issuedAt`, and with DELEGATION_REVOKED when the parent
   * delegation (if any) was revoked meanwhile.
   */
  | { type: "delegation.insert"; delegation: DelegationRow }
  /** Marks one delegation revoked; fails with DELEGATION_NOT_ACTIVE when it already is. */
  | { type: "delegation.revoke"; delegationId: string; revokedBy: string; at: string }
  /** Records that a delegation's expiry was audited; fails with DELEGATION_NOT_ACTIVE when already recorded or revoked. */
  | { type: "delegation.expire"; delegationId: string; at: string };

/**
 * A delegation as persisted: `childAgentId` acts for `parentAgentId` within `capabilities` until
 * `expiresAt`. `parentDelegationId` is null when the parent is a root agent.
 */
export interface DelegationRow {
  id: string;
  org: string;
  parentAgentId: string;
  childAgentId: string;
  name: string;
  /** Action-type globs (policy `action` syntax). */
  capabilities: string[];
  issuedAt: string;
  expiresAt: string;
  revokedAt: string | null;
  revokedBy: string | null;
  parentDelegationId: string | null;
  /** When the `delegation.expired` audit record was written (null until then). */
  expiredAt: string | null;
}

/** Which delegations `listDelegations` returns (all of the org's when empty). */
export interface DelegationQuery {
  /** Only rows that expire after this ISO time, or whose expiry is not recorded yet and are not revoked. */
  liveAt?: string;
}

/** An operator's kill switch for one agent, as persisted (the latest transition wins). */
export interface AgentControlRow {
  agentId: string;
  contained: boolean;
  changedBy: string;
  reason: string | null;
  changedAt: string;
}

/** One record to append, with the writes that must commit (or fail) together with it. */
export interface PendingAppend {
  fields: RecordFields;
  encoded: EncodedRecord;
  effects?: StoreEffect[];
}

export type AppendOutcome = { ok: true; seq: number; hash: string } | { ok: false; error: EngineError };

/** A stored record row. */
export interface StoredEvent {
  id: string;
  seq: number;
  hash: string;
  /** The canonical JSON text that `hash` covers. */
  text: string;
  agent: string;
  actionType: string;
}

export interface ChainHead {
  seq: number;
  hash: string;
}

/** A signed statement "the chain of `org` had `size` records ending in `headHash` at `time`". */
export interface Checkpoint {
  org: string;
  size: number;
  headHash: string;
  time: string;
  kid: string;
  signature: string;
}

export interface OutcomeRow {
  auditEventId: string;
  agentId: string;
  status: string;
  message: string | null;
  metadata: string | null;
  updatedAt: string;
}

export interface IdempotencyRow {
  fingerprint: string;
  result: string;
}

/** Key material the engine keeps beside the store (private: never exported). */
export interface StoredKeys {
  keyring: KeyringData;
  hmac: HmacKeySetData;
}

/**
 * A hint that the store changed, pushed by a store other processes share (PostgreSQL
 * LISTEN/NOTIFY). Never the data itself: receivers re-read the store. `resync` means hints may
 * have been missed (the listening connection was lost and is back): re-read everything.
 */
export type StoreChange =
  | {
      kind: "appended";
      org: string;
      /** The highest seq appended. */
      seq: number;
      /** Approvals whose state changed; `"all"` when the sender did not list them. */
      approvals: readonly string[] | "all";
      /** An operator control (kill switch) changed, or a delegation was revoked. */
      controls: boolean;
    }
  | { kind: "resync" };

/** Values may be returned directly (memory, SQLite) or as promises (PostgreSQL). */
export type MaybePromise<T> = T | Promise<T>;

/**
 * One fixed-window counter a call is checked against (and counts in, when `take`): a rate limit or
 * the calls budget. Windows start with their first count and roll `windowMs` later.
 */
export interface CounterEntry {
  /** Unique per counter within an org. */
  name: string;
  /** The call is refused when the counter has reached this (Infinity: never; used to count only). */
  limit: number;
  windowMs: number;
  /** Count the call in this counter when it passes every entry. */
  take: boolean;
}

/** A counter after a call: its window start in ms (undefined: no window yet) and its use. */
export interface CounterState {
  startedAt: number | undefined;
  used: number;
}

/** What a call's entries said: the index of the first entry at its limit (-1: passed), each counter after its batch. */
export interface CounterVerdict {
  blocked: number;
  counters: CounterState[];
}

export interface AuditStore {
  readonly kind: "memory" | "sqlite" | "postgres";
  /** SQLite file path (for worker-thread verification and the key file); undefined otherwise. */
  readonly filePath?: string;
  /** True when `appendBatch` completes synchronously and cheaply (no group commit needed). */
  readonly immediate: boolean;
  /**
   * True when `appendBatch` may be called again before the previous call's promise settled: the
   * store commits the batches in call order (SQLite with its append worker). The writer then keeps
   * two batches in flight, so deciding the next batch overlaps committing the previous one.
   */
  readonly pipelines?: boolean;
  /** Appends the items in order, in one transaction; items whose conditional effects fail are skipped. */
  appendBatch(org: string, items: PendingAppend[]): MaybePromise<AppendOutcome[]>;
  /**
   * Optional (memory store only): accepts a plain record (no effects) to encode, hash and link
   * later, in a batch, and returns its `seq` now. `build` must read only snapshots. Every other
   * method seals pending records first, so order and `seq` are as if appended one by one.
   */
  appendDeferred?(org: string, build: () => PendingAppend): number;
  head(org: string): MaybePromise<ChainHead>;
  /**
   * Up to `limit` records after `afterSeq`, in seq order; with `actionType`, only that action type;
   * with `textContains`, only records whose stored text contains it (a prefilter: callers check
   * the parsed record, since the text could also occur inside arguments).
   */
  readEvents(
    org: string,
    afterSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): MaybePromise<StoredEvent[]>;
  /**
   * Newest first: up to `limit` records with `seq < beforeSeq`, in descending seq order, with the
   * same `actionType` / `textContains` filters as `readEvents`. Reads the (org, seq) index
   * backwards, so the newest page costs the same however long the chain is.
   */
  readEventsBefore(
    org: string,
    beforeSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): MaybePromise<StoredEvent[]>;
  getEvent(org: string, id: string): MaybePromise<StoredEvent | undefined>;
  getEventAtSeq(org: string, seq: number): MaybePromise<StoredEvent | undefined>;
  getIdempotency(org: string, key: string): MaybePromise<IdempotencyRow | undefined>;
  upsertOutcome(org: string, row: OutcomeRow): MaybePromise<void>;
  getOutcome(org: string, auditEventId: string): MaybePromise<OutcomeRow | undefined>;
  /** The outcomes reported for any of these audit events (one read for a page of records), in no order. */
  getOutcomes(org: string, auditEventIds: readonly string[]): MaybePromise<OutcomeRow[]>;
  listOutcomes(org: string, afterAuditEventId: string | null, limit: number): MaybePromise<OutcomeRow[]>;
  getApproval(org: string, id: string): MaybePromise<ApprovalRow | undefined>;
  listApprovals(org: string, state?: ApprovalState): MaybePromise<ApprovalRow[]>;
  /** Every agent an operator has ever contained or released, with its current state. */
  listAgentControls(org: string): MaybePromise<AgentControlRow[]>;
  getDelegation(org: string, id: string): MaybePromise<DelegationRow | undefined>;
  /** The org's delegations (filtered by `query`), oldest first. */
  listDelegations(org: string, query?: DelegationQuery): MaybePromise<DelegationRow[]>;
  insertCheckpoint(checkpoint: Checkpoint): MaybePromise<void>;
  listCheckpoints(org: string): MaybePromise<Checkpoint[]>;
  /** Loads the keys, creating them with `create()` on first use (atomically across processes). */
  loadOrCreateKeys(org: string, create: () => StoredKeys): MaybePromise<StoredKeys>;
  /** Replaces the org's keys with `update(current)`, atomically across processes; returns the new keys. */
  updateKeys(org: string, update: (current: StoredKeys) => StoredKeys): MaybePromise<StoredKeys>;
  /**
   * Optional (PostgreSQL): calls `listener` with a hint after every commit any process makes to
   * this store, including this one's. `ready` resolves once hints flow (or the first attempt to
   * listen failed: callers poll anyway); `stop` ends the watch. Stores without it are polled.
   */
  watch?(listener: (change: StoreChange) => void): { ready: Promise<void>; stop: () => void };
  /**
   * Optional (PostgreSQL): counters shared by every process on this store. Decides the calls in
   * order, atomically across processes: a call passes when none of its entries is at its limit,
   * and is then counted in the entries it takes (docs/controls.md, "Across replicas").
   */
  takeCounters?(org: string, calls: CounterEntry[][]): Promise<CounterVerdict[]>;
  /** Optional (with `takeCounters`): takes back counts, each in the window it was made in. */
  giveCounters?(org: string, counts: { name: string; startedAt: number }[]): Promise<void>;
  /**
   * Optional (with `takeCounters`): deletes up to `limit` counters whose window ended at least
   * `maxWindowMs` ago (or never opened), skipping counters a take holds; resolves to how many.
   */
  sweepCounters?(org: string, maxWindowMs: number, limit: number): Promise<number>;
  close(): MaybePromise<void>;
}
