/**
 * In-memory store: for tests and ephemeral agents. Everything is lost on close.
 *
 * Plain records (no approval or idempotency effects) may be appended deferred: the caller gets its
 * `seq` at once and the store encodes, hashes and links the record later, in a batch, off the
 * caller's critical path. Every other operation of the store (reads, effectful appends, close)
 * first seals what is pending, so readers and writers see the same order and `seq` as if the
 * records had been sealed one by one.
 *
 * Pending records are sealed {@link SEAL_DELAY_MS} after the first of them, not on the next turn of
 * the event loop: a tool that does I/O (an HTTP request) turns the loop once per call, and sealing
 * a batch of one there ran the encoder, the JSON parse and the hash cold, in the middle of the
 * tool's own round trip, several times what the same work costs in a batch (docs/audit.md).
 */
import { GENESIS_HASH, sealRecord } from "../chain/record.js";
import type { ApprovalState } from "../types.js";
import {
  applyEffectToRow,
  delegationConflict,
  effectApprovalId,
  effectConflict,
  idempotencyTaken,
} from "./effects.js";
import type {
  AgentControlRow,
  AppendOutcome,
  ApprovalRow,
  AuditStore,
  ChainHead,
  Checkpoint,
  DelegationQuery,
  DelegationRow,
  IdempotencyRow,
  OutcomeRow,
  PendingAppend,
  StoredEvent,
  StoredKeys,
  StoreEffect,
} from "./types.js";

interface OrgData {
  events: StoredEvent[];
  byId: Map<string, StoredEvent>;
  approvals: Map<string, ApprovalRow>;
  outcomes: Map<string, OutcomeRow>;
  idempotency: Map<string, IdempotencyRow>;
  checkpoints: Checkpoint[];
  controls: Map<string, AgentControlRow>;
  delegations: Map<string, DelegationRow>;
  keys?: StoredKeys;
  /** Records accepted but not yet sealed, in `seq` order after `events`. */
  pending: (() => PendingAppend)[];
}

type DelegationEffect = Extract<StoreEffect, { type: `delegation.${string}` }>;

/** Pending records sealed inline once this many are waiting (bounds memory and the delay). */
const MAX_PENDING = 512;
/**
 * Longest wait, in ms, before pending records are sealed when nothing reads the store (bounds how
 * long a record that cannot be encoded goes unnoticed; any read seals at once). Long enough that a
 * loop of I/O-bound tool calls seals tens of records per batch, short against a human's look.
 */
export const SEAL_DELAY_MS = 10;

export class MemoryStore implements AuditStore {
  readonly kind = "memory" as const;
  readonly immediate = true;
  readonly #orgs = new Map<string, OrgData>();
  /** The timer that seals pending records, while one is set. */
  #sealTimer: ReturnType<typeof setTimeout> | undefined;
  #sealFailure: unknown;

  /**
   * Accepts a record to seal later; `build` must only read values the caller can no longer change
   * (snapshots). Returns the record's `seq`. Sealing runs once per batch, {@link SEAL_DELAY_MS}
   * after the first pending record, inline when {@link MAX_PENDING} records wait, and before any
   * other store operation.
   */
  appendDeferred(org: string, build: () => PendingAppend): number {
    if (this.#sealFailure !== undefined) throw this.#sealFailure;
    const data = this.#data(org);
    data.pending.push(build);
    const seq = data.events.length + data.pending.length;
    if (data.pending.length >= MAX_PENDING) this.#seal(data);
    else if (this.#sealTimer === undefined) {
      this.#sealTimer = setTimeout(() => {
        this.#sealTimer = undefined;
        this.sealPending();
      }, SEAL_DELAY_MS).unref();
    }
    return seq;
  }

  /** Seals every pending record now. */
  sealPending(): void {
    for (const data of this.#orgs.values()) if (data.pending.length > 0) this.#seal(data);
  }

  #seal(data: OrgData): void {
    const pending = data.pending;
    data.pending = [];
    try {
      for (const build of pending) this.#push(data, build());
    } catch (error) {
      // A record that cannot be encoded would leave a gap in the chain: refuse further writes.
      this.#sealFailure ??= error;
    }
  }

  #push(data: OrgData, item: PendingAppend): { seq: number; hash: string } {
    const last = data.events[data.events.length - 1];
    const seq = last ? last.seq + 1 : 1;
    const { text, hash } = sealRecord(item.encoded, last ? last.hash : GENESIS_HASH, seq);
    const event: StoredEvent = {
      id: item.fields.id,
      seq,
      hash,
      text,
      agent: item.fields.agent,
      actionType: item.fields.actionType,
    };
    data.events.push(event);
    data.byId.set(event.id, event);
    return { seq, hash };
  }

  /** The org's data with everything pending sealed (what every operation but a deferred append sees). */
  #org(org: string): OrgData {
    const data = this.#data(org);
    if (data.pending.length > 0) this.#seal(data);
    if (this.#sealFailure !== undefined) throw this.#sealFailure;
    return data;
  }

  #data(org: string): OrgData {
    let data = this.#orgs.get(org);
    if (!data) {
      data = {
        events: [],
        byId: new Map(),
        approvals: new Map(),
        outcomes: new Map(),
        idempotency: new Map(),
        checkpoints: [],
        controls: new Map(),
        delegations: new Map(),
        pending: [],
      };
      this.#orgs.set(org, data);
    }
    return data;
  }

  appendBatch(org: string, items: PendingAppend[]): AppendOutcome[] {
    const data = this.#org(org);
    const out: AppendOutcome[] = [];
    for (const item of items) {
      const conflict = this.#conflict(data, item);
      if (conflict) {
        out.push({ ok: false, error: conflict });
        continue;
      }
      const { seq, hash } = this.#push(data, item);
      if (item.effects) this.#apply(data, item);
      out.push({ ok: true, seq, hash });
    }
    return out;
  }

  #conflict(data: OrgData, item: PendingAppend) {
    if (!item.effects) return undefined;
    for (const effect of item.effects) {
      if (effect.type === "idempotency.insert" && data.idempotency.has(effect.key))
        return idempotencyTaken(effect.key);
      if (effect.type.startsWith("delegation.")) {
        const conflict = this.#delegationConflict(data, effect as DelegationEffect);
        if (conflict) return conflict;
        continue;
      }
      const id = effectApprovalId(effect);
      if (id === undefined) continue;
      const conflict = effectConflict(effect, data.approvals.get(id));
      if (conflict) return conflict;
    }
    return undefined;
  }

  #delegationConflict(data: OrgData, effect: DelegationEffect) {
    if (effect.type !== "delegation.insert") {
      return delegationConflict(effect, { current: data.delegations.get(effect.delegationId) });
    }
    const row = effect.delegation;
    let activeSameChild: DelegationRow | undefined;
    for (const other of data.delegations.values()) {
      if (
        other.childAgentId === row.childAgentId &&
        other.revokedAt === null &&
        other.expiresAt > row.issuedAt
      ) {
        activeSameChild = other;
      }
    }
    const parent = row.parentDelegationId === null ? undefined : data.delegations.get(row.parentDelegationId);
    return delegationConflict(effect, {
      ...(activeSameChild ? { activeSameChild } : {}),
      ...(parent ? { parent } : {}),
    });
  }

  #apply(data: OrgData, item: PendingAppend): void {
    for (const effect of item.effects ?? []) {
      if (effect.type === "delegation.insert") {
        const row = effect.delegation;
        data.delegations.set(row.id, { ...row, capabilities: [...row.capabilities] });
      } else if (effect.type === "delegation.revoke") {
        const row = data.delegations.get(effect.delegationId)!;
        data.delegations.set(row.id, { ...row, revokedAt: effect.at, revokedBy: effect.revokedBy });
      } else if (effect.type === "delegation.expire") {
        const row = data.delegations.get(effect.delegationId)!;
        data.delegations.set(row.id, { ...row, expiredAt: effect.at });
      } else if (effect.type === "approval.insert")
        data.approvals.set(effect.approval.id, { ...effect.approval });
      else if (effect.type === "agent.control")
        data.controls.set(effect.control.agentId, { ...effect.control });
      else if (effect.type === "idempotency.insert") {
        data.idempotency.set(effect.key, { fingerprint: effect.fingerprint, result: effect.result });
      } else {
        const row = data.approvals.get(effect.approvalId)!;
        data.approvals.set(row.id, applyEffectToRow(effect, row));
      }
    }
  }

  head(org: string): ChainHead {
    const last = this.#org(org).events.at(-1);
    return last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  readEvents(
    org: string,
    afterSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): StoredEvent[] {
    const events = this.#org(org).events;
    const out: StoredEvent[] = [];
    // seq is 1-based and dense in memory, so index = seq - 1.
    for (let i = Math.max(0, afterSeq); i < events.length && out.length < limit; i++) {
      const event = events[i]!;
      if (actionType !== undefined && event.actionType !== actionType) continue;
      if (textContains !== undefined && !event.text.includes(textContains)) continue;
      out.push(event);
    }
    return out;
  }

  readEventsBefore(
    org: string,
    beforeSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): StoredEvent[] {
    const events = this.#org(org).events;
    const out: StoredEvent[] = [];
    // seq is 1-based and dense in memory: the record before `beforeSeq` is at index beforeSeq - 2.
    for (let i = Math.min(events.length, beforeSeq - 1) - 1; i >= 0 && out.length < limit; i--) {
      const event = events[i]!;
      if (actionType !== undefined && event.actionType !== actionType) continue;
      if (textContains !== undefined && !event.text.includes(textContains)) continue;
      out.push(event);
    }
    return out;
  }

  getEvent(org: string, id: string): StoredEvent | undefined {
    return this.#org(org).byId.get(id);
  }

  getEventAtSeq(org: string, seq: number): StoredEvent | undefined {
    return this.#org(org).events[seq - 1];
  }

  getIdempotency(org: string, key: string): IdempotencyRow | undefined {
    return this.#org(org).idempotency.get(key);
  }

  upsertOutcome(org: string, row: OutcomeRow): void {
    this.#org(org).outcomes.set(row.auditEventId, { ...row });
  }

  getOutcome(org: string, auditEventId: string): OutcomeRow | undefined {
    return this.#org(org).outcomes.get(auditEventId);
  }

  getOutcomes(org: string, auditEventIds: readonly string[]): OutcomeRow[] {
    const outcomes = this.#org(org).outcomes;
    return auditEventIds.flatMap((id) => outcomes.get(id) ?? []);
  }

  listOutcomes(org: string, afterAuditEventId: string | null, limit: number): OutcomeRow[] {
    const rows = [...this.#org(org).outcomes.values()].sort((a, b) =>
      a.auditEventId < b.auditEventId ? -1 : 1,
    );
    return rows
      .filter((r) => afterAuditEventId === null || r.auditEventId > afterAuditEventId)
      .slice(0, limit);
  }

  getApproval(org: string, id: string): ApprovalRow | undefined {
    const row = this.#org(org).approvals.get(id);
    return row ? { ...row } : undefined;
  }

  listApprovals(org: string, state?: ApprovalState): ApprovalRow[] {
    return [...this.#org(org).approvals.values()]
      .filter((row) => state === undefined || row.state === state)
      .map((row) => ({ ...row }))
      .sort((a, b) => (a.createdAt < b.createdAt ? -1 : a.createdAt > b.createdAt ? 1 : 0));
  }

  listAgentControls(org: string): AgentControlRow[] {
    return [...this.#org(org).controls.values()]
      .map((row) => ({ ...row }))
      .sort((a, b) => (a.agentId < b.agentId ? -1 : a.agentId > b.agentId ? 1 : 0));
  }

  getDelegation(org: string, id: string): DelegationRow | undefined {
    const row = this.#org(org).delegations.get(id);
    return row ? { ...row, capabilities: [...row.capabilities] } : undefined;
  }

  listDelegations(org: string, query: DelegationQuery = {}): DelegationRow[] {
    const liveAt = query.liveAt;
    return [...this.#org(org).delegations.values()]
      .filter(
        (row) =>
          liveAt === undefined ||
          row.expiresAt > liveAt ||
          (row.expiredAt === null && row.revokedAt === null),
      )
      .map((row) => ({ ...row, capabilities: [...row.capabilities] }));
  }

  insertCheckpoint(checkpoint: Checkpoint): void {
    const list = this.#org(checkpoint.org).checkpoints;
    if (!list.some((c) => c.size === checkpoint.size)) list.push({ ...checkpoint });
  }

  listCheckpoints(org: string): Checkpoint[] {
    return [...this.#org(org).checkpoints].sort((a, b) => a.size - b.size);
  }

  loadOrCreateKeys(org: string, create: () => StoredKeys): StoredKeys {
    const data = this.#org(org);
    data.keys ??= create();
    return data.keys;
  }

  updateKeys(org: string, update: (current: StoredKeys) => StoredKeys): StoredKeys {
    const data = this.#org(org);
    if (!data.keys) throw new Error(`no keys for org ${org} yet`);
    data.keys = update(data.keys);
    return data.keys;
  }

  close(): void {
    clearTimeout(this.#sealTimer);
    this.#sealTimer = undefined;
    this.sealPending();
  }

  /** Test hook: direct access to the stored rows (to simulate tampering in memory). */
  unsafeRows(org: string): StoredEvent[] {
    return this.#org(org).events;
  }
}
