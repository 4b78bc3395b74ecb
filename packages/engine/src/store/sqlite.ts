/**
 * SQLite store (`node:sqlite`): one file, WAL journal, `synchronous=NORMAL`.
 *
 * Durability: in WAL mode with NORMAL, COMMIT returns after the transaction's pages are written
 * to the WAL file with write(2), i.e. they are in the operating system, not only in this process.
 * A killed process (even SIGKILL) loses nothing committed; only an OS crash or power loss can lose
 * the last transactions since the previous WAL checkpoint's fsync.
 */
import { mkdirSync } from "node:fs";
import { availableParallelism } from "node:os";
import { dirname, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import { Worker } from "node:worker_threads";
import { GENESIS_HASH, sealRecord } from "../chain/record.js";
import { ChainVerifier } from "../chain/verify.js";
import { EngineError, storeFailure } from "../errors.js";
import { type ProgressSink, progressReporter } from "../progress.js";
import type { ApprovalState } from "../types.js";
import type { ChainScan } from "../verify-store.js";
import { delegationConflict, effectApprovalId, effectConflict, idempotencyTaken } from "./effects.js";
import { keyFilePath, loadOrCreateInKeyFile, updateInKeyFile } from "./key-file.js";
import { AppendWorker, appendWorkerTuning } from "./sqlite-append.js";
import { checkpointTuning, WalCheckpointer } from "./sqlite-checkpointer.js";
import { loadSqlite } from "./sqlite-module.js";
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
  MaybePromise,
  OutcomeRow,
  PendingAppend,
  StoredEvent,
  StoredKeys,
} from "./types.js";

/**
 * Switches a connection to WAL. Two processes opening a fresh file at once race on this pragma,
 * and SQLite may answer SQLITE_BUSY at once, without calling the busy handler (it would otherwise
 * risk a deadlock), so the attempt is repeated until `BUSY_TIMEOUT_MS` as the busy handler would.
 */
async function enterWalMode(db: DatabaseSync): Promise<void> {
  const giveUpAt = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      db.exec("PRAGMA journal_mode = WAL");
      return;
    } catch (error) {
      const code = (error as { errcode?: number }).errcode;
      // 5 SQLITE_BUSY, 6 SQLITE_LOCKED (extended codes keep the primary code in the low byte).
      const busy = code !== undefined && ((code & 0xff) === 5 || (code & 0xff) === 6);
      if (!busy || Date.now() >= giveUpAt) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5 * attempt, 50)));
    }
  }
}

/** Schema migrations, applied in order; the index + 1 is the version. Never edit a shipped one. */
export const SQLITE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE audit_events (
     org TEXT NOT NULL,
     seq INTEGER NOT NULL,
     id TEXT NOT NULL,
     hash TEXT NOT NULL,
     agent TEXT NOT NULL,
     action_type TEXT NOT NULL,
     record TEXT NOT NULL
   );
   CREATE UNIQUE INDEX audit_events_org_seq ON audit_events (org, seq);
   CREATE UNIQUE INDEX audit_events_id ON audit_events (id);
   CREATE TABLE approvals (
     org TEXT NOT NULL,
     id TEXT NOT NULL PRIMARY KEY,
     agent_id TEXT NOT NULL,
     action_type TEXT NOT NULL,
     state TEXT NOT NULL,
     created_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     audit_event_id TEXT NOT NULL,
     policy_name TEXT,
     binding_hash TEXT NOT NULL,
     decided_by TEXT,
     reason TEXT,
     decided_at TEXT,
     consumed_at TEXT,
     request TEXT NOT NULL
   );
   CREATE INDEX approvals_org_state ON approvals (org, state, created_at);
   CREATE TABLE outcomes (
     org TEXT NOT NULL,
     audit_event_id TEXT NOT NULL,
     agent_id TEXT NOT NULL,
     status TEXT NOT NULL,
     message TEXT,
     metadata TEXT,
     updated_at TEXT NOT NULL,
     PRIMARY KEY (org, audit_event_id)
   );
   CREATE TABLE idempotency_keys (
     org TEXT NOT NULL,
     key TEXT NOT NULL,
     fingerprint TEXT NOT NULL,
     result TEXT NOT NULL,
     PRIMARY KEY (org, key)
   );
   CREATE TABLE checkpoints (
     org TEXT NOT NULL,
     size INTEGER NOT NULL,
     head_hash TEXT NOT NULL,
     time TEXT NOT NULL,
     kid TEXT NOT NULL,
     signature TEXT NOT NULL,
     PRIMARY KEY (org, size)
   );`,
  // The id lookup path leaves the hot table: one B-tree fewer written per commit. Ids are copied
  // into audit_event_ids in batches (see ID_INDEX_LAG); lookups scan the short unindexed tail.
  `CREATE TABLE audit_event_ids (
     id TEXT NOT NULL PRIMARY KEY,
     org TEXT NOT NULL,
     seq INTEGER NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE audit_event_id_marks (
     org TEXT NOT NULL PRIMARY KEY,
     seq INTEGER NOT NULL
   );
   INSERT OR IGNORE INTO audit_event_ids (id, org, seq) SELECT id, org, seq FROM audit_events;
   INSERT INTO audit_event_id_marks (org, seq) SELECT org, MAX(seq) FROM audit_events GROUP BY org;
   DROP INDEX audit_events_id;`,
  // 3: the operator kill switch per agent (latest transition wins; the audit chain keeps history).
  `CREATE TABLE IF NOT EXISTS agent_controls (
     org TEXT NOT NULL,
     agent_id TEXT NOT NULL,
     contained INTEGER NOT NULL,
     changed_by TEXT NOT NULL,
     reason TEXT,
     changed_at TEXT NOT NULL,
     PRIMARY KEY (org, agent_id)
   );`,
  // 4: the delegation registry (the audit chain keeps every creation, revocation and expiry).
  `CREATE TABLE IF NOT EXISTS delegations (
     org TEXT NOT NULL,
     id TEXT NOT NULL,
     parent_agent_id TEXT NOT NULL,
     child_agent_id TEXT NOT NULL,
     name TEXT NOT NULL,
     capabilities TEXT NOT NULL,
     issued_at TEXT NOT NULL,
     expires_at TEXT NOT NULL,
     revoked_at TEXT,
     revoked_by TEXT,
     parent_delegation_id TEXT,
     expired_at TEXT,
     PRIMARY KEY (org, id)
   );
   CREATE INDEX IF NOT EXISTS delegations_child ON delegations (org, child_agent_id);
   CREATE INDEX IF NOT EXISTS delegations_expiry ON delegations (org, expires_at);`,
];

/**
 * Records appended since the last copy of their ids into `audit_event_ids` before the append
 * transaction copies them (one INSERT ... SELECT); `getEvent` scans at most about this many rows.
 */
const ID_INDEX_LAG = 128;

const BUSY_TIMEOUT_MS = 5000;
const WAL_SIZE_LIMIT_BYTES = 64 * 1024 * 1024;
/** How chains are split across verify worker threads (tunable for tests and benchmarks). */
export const verifyTuning = {
  /** Chains at least this long are verified across worker threads. */
  parallelMinRows: 50_000,
  /**
   * Each worker takes the next range from a queue when it finishes one, so a worker slowed by
   * other load on a shared core does less of the chain instead of making the others wait; about
   * this many ranges per worker, of at least `minRangeRows` records.
   */
  rangesPerWorker: 8,
  minRangeRows: 20_000,
  /**
   * Verify workers read the database file through a memory map up to this size (SQLite caps it
   * at its compile-time maximum, 2 GiB in Node's build): no read() call and no copy per page.
   * Measured on 1M records: system CPU 0.64-0.96 -> 0.27-0.36 µs per record.
   */
  mmapBytes: 2 ** 31,
};
// Small chunks keep each worker's working set in cache; measured best around 1000 rows.
const VERIFY_CHUNK = 1000;

/** Rows for verification, read as arrays `[id, seq, hash, text]` to avoid per-row objects. */
export const VERIFY_ROWS_SQL =
  "SELECT seq, hash, record FROM audit_events WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?";
/** Resolves the id of a broken row (verification reads no ids, to stay fast). */
export const ID_AT_SEQ_SQL = "SELECT id FROM audit_events WHERE org = ? AND seq = ?";

interface Statements {
  /** Transaction control, prepared once (a `db.exec` parses its SQL on every call). */
  beginImmediate: StatementSync;
  commit: StatementSync;
  dataVersion: StatementSync;
  insertDelegation: StatementSync;
  revokeDelegation: StatementSync;
  expireDelegation: StatementSync;
  getDelegation: StatementSync;
  activeDelegationOfChild: StatementSync;
  listDelegations: StatementSync;
  listLiveDelegations: StatementSync;
  upsertAgentControl: StatementSync;
  listAgentControls: StatementSync;
  verifyRows: StatementSync;
  idAtSeq: StatementSync;
  head: StatementSync;
  /** Multi-row event inserts, by row count (each of {@link INSERT_WIDTHS}). */
  insertEvents: Map<number, StatementSync>;
  readEvents: StatementSync;
  readEventsByType: StatementSync;
  readEventsContaining: StatementSync;
  readEventsByTypeContaining: StatementSync;
  readEventsBefore: StatementSync;
  readEventsBeforeByType: StatementSync;
  readEventsBeforeContaining: StatementSync;
  readEventsBeforeByTypeContaining: StatementSync;
  getEventById: StatementSync;
  getIdEntry: StatementSync;
  getRecentEventById: StatementSync;
  scanEventById: StatementSync;
  getIdMark: StatementSync;
  setIdMark: StatementSync;
  copyIds: StatementSync;
  getEventAtSeq: StatementSync;
  getIdempotency: StatementSync;
  insertIdempotency: StatementSync;
  upsertOutcome: StatementSync;
  getOutcome: StatementSync;
  listOutcomes: StatementSync;
  getApproval: StatementSync;
  insertApproval: StatementSync;
  transitionApproval: StatementSync;
  consumeApproval: StatementSync;
  listApprovals: StatementSync;
  listApprovalsByState: StatementSync;
  insertCheckpoint: StatementSync;
  listCheckpoints: StatementSync;
}

export class SqliteStore implements AuditStore {
  readonly kind = "sqlite" as const;
  readonly immediate = false;
  readonly filePath: string;
  readonly #db: DatabaseSync;
  readonly #s: Statements;
  #closed = false;
  /** Chain heads this connection committed, valid while `data_version` equals `#headVersion`. */
  readonly #heads = new Map<string, ChainHead>();
  #headVersion = -1;
  /** Per org, the last `seq` whose id is in `audit_event_ids` (same validity as `#heads`). */
  readonly #idMarks = new Map<string, number>();

  /** Commits large batches on another thread; started by the first large batch. */
  #appendWorker: AppendWorker | undefined;
  #useAppendWorker: boolean;
  /** Runs WAL checkpoints on its own thread (see sqlite-checkpointer.ts). */
  #checkpointer: WalCheckpointer | undefined;
  /** Set while batches wait for the checkpoint worker to release the writer lock; later ones queue behind. */
  #behindCheckpoint: Promise<unknown> | undefined;

  /**
   * With the append worker on (and alive), batches may be handed over while earlier ones are still
   * being committed; otherwise every batch is committed synchronously on this thread.
   */
  get pipelines(): boolean {
    return this.#useAppendWorker && this.#appendWorker?.dead !== true;
  }

  private constructor(filePath: string, db: DatabaseSync, useAppendWorker: boolean) {
    this.filePath = filePath;
    this.#db = db;
    this.#useAppendWorker = useAppendWorker;
    this.#s = prepareAll(db);
  }

  /**
   * Opens (creating directory, file and schema as needed) the SQLite store at `path`.
   * `appendWorker: true` commits large batches on a worker thread (see sqlite-append.ts); without
   * it every commit stays on the calling thread. `walCheckpointer: false` leaves WAL checkpoints to
   * `wal_autocheckpoint` on this connection (the append worker's own store: it is off the event loop).
   */
  static async open(
    path: string,
    options: { appendWorker?: boolean; walCheckpointer?: boolean } = {},
  ): Promise<SqliteStore> {
    const walWorker = options.walCheckpointer !== false && checkpointTuning.enabled;
    const { DatabaseSync } = await loadSqlite();
    const filePath = resolve(path);
    try {
      mkdirSync(dirname(filePath), { recursive: true });
    } catch (cause) {
      throw new EngineError(
        "STORE_UNAVAILABLE",
        503,
        `Cannot create the directory for the audit store ${filePath}`,
        { path: filePath },
        { cause },
      );
    }
    let db: DatabaseSync;
    try {
      db = new DatabaseSync(filePath);
      db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
      await enterWalMode(db);
      db.exec("PRAGMA synchronous = NORMAL");
      // A checkpoint (copy back + two fsyncs) runs inside whichever COMMIT crosses the threshold.
      // At ~40 MB instead of the default ~4 MB it runs a tenth as often, and copies each hot page
      // (the tree's rightmost leaves) once instead of ten times; the WAL file is cut back to
      // 64 MiB after a checkpoint. Normally a worker thread checkpoints instead, so that no commit
      // on the event loop runs one (sqlite-checkpointer.ts).
      db.exec(`PRAGMA wal_autocheckpoint = ${walWorker ? 0 : checkpointTuning.autocheckpointPages}`);
      db.exec(`PRAGMA journal_size_limit = ${WAL_SIZE_LIMIT_BYTES}`);
    } catch (cause) {
      throw new EngineError(
        "STORE_UNAVAILABLE",
        503,
        `Cannot open the SQLite audit store ${filePath}: ${(cause as Error).message}`,
        { path: filePath },
        { cause },
      );
    }
    try {
      migrate(db, filePath);
      const store = new SqliteStore(filePath, db, options.appendWorker === true);
      if (walWorker) store.#checkpointer = new WalCheckpointer(filePath, () => store.#autocheckpoint());
      return store;
    } catch (error) {
      db.close();
      throw error;
    }
  }

  /**
   * Large batches go to the append worker (started by the first one; until it is ready, and if it
   * fails, they are committed here). While the worker has batches in flight every batch follows
   * them, so records are committed in the order they were handed over. Small batches with the
   * worker idle (a lone caller) are committed here, without a thread hop.
   */
  appendBatch(org: string, items: PendingAppend[]): MaybePromise<AppendOutcome[]> {
    if (this.#behindCheckpoint === undefined) {
      const released = this.#checkpointer?.writerLockReleased();
      if (released === undefined) return this.#appendBatchInOrder(org, items);
      this.#behindCheckpoint = released;
    }
    // The checkpoint worker holds the writer lock: wait for it without blocking the event loop
    // (not in SQLite's busy handler), and keep later batches behind this one, in call order.
    const result = this.#behindCheckpoint.then(() => this.#appendBatchInOrder(org, items));
    const settled = result.then(
      () => undefined,
      () => undefined,
    );
    this.#behindCheckpoint = settled;
    void settled.then(() => {
      if (this.#behindCheckpoint === settled) this.#behindCheckpoint = undefined;
    });
    return result;
  }

  #appendBatchInOrder(org: string, items: PendingAppend[]): MaybePromise<AppendOutcome[]> {
    const worker = this.#appendWorker;
    if (worker !== undefined && !worker.dead) {
      if (worker.busy || (worker.usable && items.length >= appendWorkerTuning.minBatch)) {
        return worker.append(org, items);
      }
    } else if (worker === undefined && this.#useAppendWorker && items.length >= appendWorkerTuning.minBatch) {
      try {
        this.#appendWorker = new AppendWorker(this.filePath);
      } catch {
        this.#useAppendWorker = false; // cannot start a thread here: commit on this one
      }
    }
    return this.appendBatchNow(org, items);
  }

  /** Appends on this connection, in this thread (the append worker calls this on its own store). */
  appendBatchNow(org: string, items: PendingAppend[]): AppendOutcome[] {
    const db = this.#db;
    const s = this.#s;
    // `get()`, not `run()`, for statements whose result is not read: `run()` builds a
    // `{ changes, lastInsertRowid }` object per call through V8's slow property path (~4.7k
    // instructions each, three or more per commit); `get()` steps the statement the same way (to
    // SQLITE_DONE, errors thrown alike) and returns `undefined` when it yields no row.
    s.beginImmediate.get();
    try {
      // Under the write lock: reuse the head we wrote last unless another connection (another
      // process, or another engine in this one) committed since; `data_version` tells.
      const version = (s.dataVersion.get() as unknown as [number])[0];
      let head = version === this.#headVersion ? this.#heads.get(org) : undefined;
      if (!head) {
        if (version !== this.#headVersion) {
          this.#heads.clear();
          this.#idMarks.clear();
        }
        const row = s.head.get(org) as { seq: number; hash: string } | undefined;
        head = row ? { seq: row.seq, hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
      }
      let seq = head.seq;
      let prev = head.hash;
      const out: AppendOutcome[] = new Array(items.length);
      // Rows of plain records wait here and go in as multi-row INSERTs (fewer statement calls);
      // a record with effects first flushes them, so every row is written in chain order.
      const rows: (string | number)[] = [];
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (item.effects) {
          const conflict = this.#conflict(org, item);
          if (conflict) {
            out[i] = { ok: false, error: conflict };
            continue;
          }
        }
        seq++;
        const { text, hash } = sealRecord(item.encoded, prev, seq);
        const f = item.fields;
        rows.push(org, seq, f.id, hash, f.agent, f.actionType, text);
        if (item.effects) {
          this.#insertRows(rows);
          rows.length = 0;
          this.#apply(org, item);
        }
        prev = hash;
        out[i] = { ok: true, seq, hash };
      }
      if (rows.length > 0) this.#insertRows(rows);
      let idMark = this.#idMarks.get(org);
      if (idMark === undefined) {
        idMark = (s.getIdMark.get(org) as { seq: number } | undefined)?.seq ?? 0;
      }
      if (seq - idMark >= ID_INDEX_LAG) {
        s.copyIds.get(org, idMark);
        s.setIdMark.get(org, seq);
        idMark = seq;
      }
      s.commit.get();
      this.#idMarks.set(org, idMark);
      this.#headVersion = version;
      this.#heads.set(org, { seq, hash: prev });
      return out;
    } catch (error) {
      safelyRollback(db);
      this.#heads.clear();
      this.#idMarks.clear();
      throw storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
    }
  }

  /** Inserts event rows ({@link EVENT_ROW_WIDTH} values each) with the widest statements that fit. */
  #insertRows(values: (string | number)[]): void {
    const count = values.length / EVENT_ROW_WIDTH;
    if (count === 1) {
      // A lone caller's commit: no array copy, no spread.
      this.#s.insertEvents
        .get(1)!
        .get(values[0]!, values[1]!, values[2]!, values[3]!, values[4]!, values[5]!, values[6]!);
      return;
    }
    let at = 0;
    for (const width of INSERT_WIDTHS) {
      const statement = this.#s.insertEvents.get(width)!;
      const span = width * EVENT_ROW_WIDTH;
      while (count - at / EVENT_ROW_WIDTH >= width) {
        statement.get(...(at === 0 && span === values.length ? values : values.slice(at, at + span)));
        at += span;
      }
    }
  }

  #conflict(org: string, item: PendingAppend): EngineError | undefined {
    for (const effect of item.effects!) {
      if (effect.type === "idempotency.insert") {
        if (this.#s.getIdempotency.get(org, effect.key)) return idempotencyTaken(effect.key);
        continue;
      }
      if (effect.type === "delegation.insert") {
        const row = effect.delegation;
        const active = this.#s.activeDelegationOfChild.get(org, row.childAgentId, row.issuedAt);
        const parent =
          row.parentDelegationId === null ? undefined : this.getDelegation(org, row.parentDelegationId);
        const conflict = delegationConflict(effect, {
          ...(active ? { activeSameChild: toDelegationRow(active) } : {}),
          ...(parent ? { parent } : {}),
        });
        if (conflict) return conflict;
        continue;
      }
      if (effect.type === "delegation.revoke" || effect.type === "delegation.expire") {
        const current = this.getDelegation(org, effect.delegationId);
        const conflict = delegationConflict(effect, current ? { current } : {});
        if (conflict) return conflict;
        continue;
      }
      const id = effectApprovalId(effect);
      if (id === undefined) continue;
      const conflict = effectConflict(effect, this.getApproval(org, id));
      if (conflict) return conflict;
    }
    return undefined;
  }

  #apply(org: string, item: PendingAppend): void {
    const s = this.#s;
    for (const effect of item.effects!) {
      switch (effect.type) {
        case "approval.insert": {
          const a = effect.approval;
          s.insertApproval.run(
            org,
            a.id,
            a.agentId,
            a.actionType,
            a.state,
            a.createdAt,
            a.expiresAt,
            a.auditEventId,
            a.policyName,
            a.bindingHash,
            a.request,
          );
          break;
        }
        case "approval.transition":
          s.transitionApproval.run(
            effect.to,
            effect.decidedBy,
            effect.reason,
            effect.at,
            org,
            effect.approvalId,
          );
          break;
        case "approval.consume":
          s.consumeApproval.run(effect.at, org, effect.approvalId);
          break;
        case "idempotency.insert":
          s.insertIdempotency.run(org, effect.key, effect.fingerprint, effect.result);
          break;
        case "agent.control": {
          const c = effect.control;
          s.upsertAgentControl.run(org, c.agentId, c.contained ? 1 : 0, c.changedBy, c.reason, c.changedAt);
          break;
        }
        case "delegation.insert": {
          const d = effect.delegation;
          s.insertDelegation.run(
            org,
            d.id,
            d.parentAgentId,
            d.childAgentId,
            d.name,
            JSON.stringify(d.capabilities),
            d.issuedAt,
            d.expiresAt,
            d.parentDelegationId,
          );
          break;
        }
        case "delegation.revoke":
          s.revokeDelegation.run(effect.at, effect.revokedBy, org, effect.delegationId);
          break;
        case "delegation.expire":
          s.expireDelegation.run(effect.at, org, effect.delegationId);
          break;
      }
    }
  }

  head(org: string): ChainHead {
    const row = this.#s.head.get(org) as { seq: number; hash: string } | undefined;
    return row ? { seq: row.seq, hash: row.hash } : { seq: 0, hash: GENESIS_HASH };
  }

  readEvents(
    org: string,
    afterSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): StoredEvent[] {
    const s = this.#s;
    const rows =
      textContains === undefined
        ? actionType === undefined
          ? s.readEvents.all(org, afterSeq, limit)
          : s.readEventsByType.all(org, afterSeq, actionType, limit)
        : actionType === undefined
          ? s.readEventsContaining.all(org, afterSeq, textContains, limit)
          : s.readEventsByTypeContaining.all(org, afterSeq, actionType, textContains, limit);
    return rows as unknown as StoredEvent[];
  }

  readEventsBefore(
    org: string,
    beforeSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): StoredEvent[] {
    const s = this.#s;
    const rows =
      textContains === undefined
        ? actionType === undefined
          ? s.readEventsBefore.all(org, beforeSeq, limit)
          : s.readEventsBeforeByType.all(org, beforeSeq, actionType, limit)
        : actionType === undefined
          ? s.readEventsBeforeContaining.all(org, beforeSeq, textContains, limit)
          : s.readEventsBeforeByTypeContaining.all(org, beforeSeq, actionType, textContains, limit);
    return rows as unknown as StoredEvent[];
  }

  getEvent(org: string, id: string): StoredEvent | undefined {
    const s = this.#s;
    const indexed = s.getEventById.get(id, org) as StoredEvent | undefined;
    if (indexed) return indexed;
    // Not copied yet (the recent tail), or the rows were renumbered after the copy (tampering):
    // then only a scan of the whole org finds it.
    if (s.getIdEntry.get(id, org)) return s.scanEventById.get(org, id) as StoredEvent | undefined;
    return s.getRecentEventById.get(org, id) as StoredEvent | undefined;
  }

  getEventAtSeq(org: string, seq: number): StoredEvent | undefined {
    return this.#s.getEventAtSeq.get(org, seq) as StoredEvent | undefined;
  }

  getIdempotency(org: string, key: string): IdempotencyRow | undefined {
    return this.#s.getIdempotency.get(org, key) as IdempotencyRow | undefined;
  }

  upsertOutcome(org: string, row: OutcomeRow): void {
    this.#s.upsertOutcome.run(
      org,
      row.auditEventId,
      row.agentId,
      row.status,
      row.message,
      row.metadata,
      row.updatedAt,
    );
  }

  getOutcome(org: string, auditEventId: string): OutcomeRow | undefined {
    return this.#s.getOutcome.get(org, auditEventId) as OutcomeRow | undefined;
  }

  getOutcomes(org: string, auditEventIds: readonly string[]): OutcomeRow[] {
    // In-process: a prepared point lookup per id costs less than building an IN list.
    return auditEventIds.flatMap((id) => (this.#s.getOutcome.get(org, id) as OutcomeRow | undefined) ?? []);
  }

  listOutcomes(org: string, afterAuditEventId: string | null, limit: number): OutcomeRow[] {
    return this.#s.listOutcomes.all(org, afterAuditEventId ?? "", limit) as unknown as OutcomeRow[];
  }

  getApproval(org: string, id: string): ApprovalRow | undefined {
    return this.#s.getApproval.get(org, id) as ApprovalRow | undefined;
  }

  listApprovals(org: string, state?: ApprovalState): ApprovalRow[] {
    const rows =
      state === undefined ? this.#s.listApprovals.all(org) : this.#s.listApprovalsByState.all(org, state);
    return rows as unknown as ApprovalRow[];
  }

  insertCheckpoint(cp: Checkpoint): void {
    this.#s.insertCheckpoint.run(cp.org, cp.size, cp.headHash, cp.time, cp.kid, cp.signature);
  }

  listCheckpoints(org: string): Checkpoint[] {
    return this.#s.listCheckpoints.all(org) as unknown as Checkpoint[];
  }

  listAgentControls(org: string): AgentControlRow[] {
    const rows = this.#s.listAgentControls.all(org) as unknown as (Omit<AgentControlRow, "contained"> & {
      contained: number;
    })[];
    return rows.map((row) => ({ ...row, contained: row.contained === 1 }));
  }

  getDelegation(org: string, id: string): DelegationRow | undefined {
    const row = this.#s.getDelegation.get(org, id);
    return row ? toDelegationRow(row) : undefined;
  }

  listDelegations(org: string, query: DelegationQuery = {}): DelegationRow[] {
    const rows =
      query.liveAt === undefined
        ? this.#s.listDelegations.all(org)
        : this.#s.listLiveDelegations.all(org, query.liveAt);
    return rows.map(toDelegationRow);
  }

  loadOrCreateKeys(org: string, create: () => StoredKeys): StoredKeys {
    // The database write lock doubles as a cross-process mutex for the key file.
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const keys = loadOrCreateInKeyFile(keyFilePath(this.filePath), org, create);
      this.#db.exec("COMMIT");
      return keys;
    } catch (error) {
      safelyRollback(this.#db);
      throw error;
    }
  }

  updateKeys(org: string, update: (current: StoredKeys) => StoredKeys): StoredKeys {
    this.#db.exec("BEGIN IMMEDIATE");
    try {
      const keys = updateInKeyFile(keyFilePath(this.filePath), org, update);
      this.#db.exec("COMMIT");
      return keys;
    } catch (error) {
      safelyRollback(this.#db);
      throw error;
    }
  }

  /**
   * Verifies the chain's hashes and links; splits large chains across worker threads, each
   * checking a contiguous range, and checks the range boundaries here.
   */
  async verifyChainFast(org: string, onProgress?: ProgressSink): Promise<ChainScan> {
    const head = this.head(org);
    const progress = onProgress ? progressReporter(onProgress, head.seq) : undefined;
    progress?.report(0);
    const workers = Math.min(availableParallelism(), 4);
    let scan: ChainScan;
    if (head.seq < verifyTuning.parallelMinRows || workers < 2) {
      scan = this.#scanRange(org, 1, head.seq, true, progress?.report);
    } else {
      const size = Math.max(
        verifyTuning.minRangeRows,
        Math.ceil(head.seq / (workers * verifyTuning.rangesPerWorker)),
      );
      const ranges: [number, number][] = [];
      for (let from = 1; from <= head.seq; from += size)
        ranges.push([from, Math.min(head.seq, from + size - 1)]);
      // Each range reports its own count per chunk; the sum is the chain's progress.
      const checkedPerRange = ranges.map(() => 0);
      const parts = await verifyRangesOnWorkers(
        this.filePath,
        org,
        ranges,
        Math.min(workers, ranges.length),
        progress &&
          ((range, checked) => {
            checkedPerRange[range] = checked;
            progress.report(checkedPerRange.reduce((sum, n) => sum + n, 0));
          }),
      );
      scan = joinRanges(parts);
    }
    if (!scan.broken) progress?.done(scan.checked);
    return scan;
  }

  #scanRange(
    org: string,
    from: number,
    to: number,
    anchored: boolean,
    onChunk?: (checked: number) => void,
  ): ChainScan {
    return scanSqliteRange(this.#s.verifyRows, this.#s.idAtSeq, org, from, to, anchored, onChunk);
  }

  /** The checkpoint worker could not start or stopped: this connection checkpoints again. */
  #autocheckpoint(): void {
    if (this.#closed) return;
    try {
      this.#db.exec(`PRAGMA wal_autocheckpoint = ${checkpointTuning.autocheckpointPages}`);
    } catch {
      // The connection is unusable; its next statement reports the failure to its caller.
    }
  }

  /** Checkpoints run on a worker thread, not in this connection's commits. */
  get walCheckpointWorker(): boolean {
    return this.#checkpointer !== undefined && !this.#checkpointer.fellBack;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#checkpointer?.close();
    this.#appendWorker?.close();
    this.#db.close();
  }
}

export interface RangeScan {
  checked: number;
  firstPrev: string | undefined;
  firstSeq: number | undefined;
  firstRowId: string;
  lastHash: string;
  lastSeq: number;
  broken?: { rowId: string; problem: string };
}

/**
 * Scans records `from..to` (inclusive) with `read` = {@link VERIFY_ROWS_SQL} in array mode.
 * `anchored`: the range starts at the genesis. `onChunk`: records checked in this range so far,
 * after each chunk.
 */
export function scanSqliteRange(
  read: StatementSync,
  idAtSeq: StatementSync,
  org: string,
  from: number,
  to: number,
  anchored: boolean,
  onChunk?: (checked: number) => void,
): RangeScan {
  const verifier = new ChainVerifier(anchored ? { prevHash: GENESIS_HASH, seq: 1 } : { seq: from });
  let after = from - 1;
  while (after < to) {
    const rows = read.all(org, after, Math.min(VERIFY_CHUNK, to - after)) as unknown as unknown[][];
    if (rows.length === 0) break;
    if (!verifier.feedArrays(rows)) break;
    onChunk?.(verifier.checked);
    after = rows[rows.length - 1]![0] as number;
  }
  const idAt = (seq: number | undefined) =>
    seq === undefined ? "" : ((idAtSeq.get(org, seq) as { id: string } | undefined)?.id ?? "");
  return {
    checked: verifier.checked,
    firstPrev: verifier.firstPrev,
    firstSeq: verifier.firstSeq,
    firstRowId: idAt(verifier.firstSeq),
    lastHash: verifier.lastHash,
    lastSeq: verifier.lastSeq,
    ...(verifier.broken
      ? { broken: { rowId: idAt(verifier.broken.seq), problem: verifier.broken.problem } }
      : {}),
  };
}

function joinRanges(parts: RangeScan[]): ChainScan {
  let checked = 0;
  let lastHash = GENESIS_HASH;
  let lastSeq = 0;
  for (const part of parts) {
    if (part.checked > 0 && part.firstPrev !== lastHash) {
      return {
        checked,
        lastSeq,
        lastHash,
        broken: {
          rowId: part.firstRowId,
          problem: `record seq ${part.firstSeq} does not link to record ${lastSeq}: a record was deleted, inserted or replaced there`,
        },
      };
    }
    checked += part.checked;
    if (part.broken) return { checked, lastSeq: part.lastSeq, lastHash: part.lastHash, broken: part.broken };
    if (part.checked > 0) {
      lastHash = part.lastHash;
      lastSeq = part.lastSeq;
    }
  }
  return { checked, lastSeq, lastHash };
}

/** What the store sends a verify worker: the next range to scan, or that there is none left. */
export type VerifyWorkerRequest = { range: number; from: number; to: number } | { done: true };
/**
 * What a verify worker posts: its count in the range after each chunk (only when asked), then the
 * range's result.
 */
export type VerifyWorkerMessage = { range: number; progress: number } | { range: number; scan: RangeScan };

/**
 * Scans `ranges` (in chain order) on `workers` threads, each taking the next range when it has
 * finished one. Resolves with the scans in range order. Once a range is broken, ranges after it
 * are not started (the first break is what verification reports).
 */
function verifyRangesOnWorkers(
  filePath: string,
  org: string,
  ranges: readonly [number, number][],
  workers: number,
  onChunk?: (range: number, checked: number) => void,
): Promise<RangeScan[]> {
  return new Promise((resolvePromise, reject) => {
    const scans: (RangeScan | undefined)[] = ranges.map(() => undefined);
    const threads: Worker[] = [];
    let next = 0;
    let firstBroken = ranges.length;
    let pending = 0;
    let failed = false;
    const fail = (error: unknown) => {
      if (failed) return;
      failed = true;
      for (const thread of threads) void thread.terminate();
      reject(error);
    };
    const dispatch = (thread: Worker) => {
      if (next < Math.min(ranges.length, firstBroken)) {
        const range = next++;
        const [from, to] = ranges[range]!;
        pending++;
        thread.postMessage({ range, from, to } satisfies VerifyWorkerRequest);
      } else {
        thread.postMessage({ done: true } satisfies VerifyWorkerRequest);
      }
    };
    for (let i = 0; i < workers; i++) {
      const thread = new Worker(new URL("./sqlite-verify-worker.js", import.meta.url), {
        workerData: {
          filePath,
          org,
          reportProgress: onChunk !== undefined,
          mmapBytes: verifyTuning.mmapBytes,
        },
      });
      threads.push(thread);
      thread.on("message", (message: VerifyWorkerMessage) => {
        if (failed) return;
        if ("progress" in message) {
          onChunk?.(message.range, message.progress);
          return;
        }
        pending--;
        scans[message.range] = message.scan;
        if (message.scan.broken && message.range < firstBroken) firstBroken = message.range;
        dispatch(thread);
        if (pending === 0 && next >= Math.min(ranges.length, firstBroken)) {
          // Every range up to the first broken one is scanned (the rest were never started).
          resolvePromise(scans.slice(0, Math.min(ranges.length, firstBroken + 1)) as RangeScan[]);
        }
      });
      thread.once("error", fail);
      thread.once("exit", (code) => {
        if (code !== 0) fail(new Error(`verify worker exited with code ${code}`));
      });
      dispatch(thread);
    }
  });
}

function migrate(db: DatabaseSync, filePath: string): void {
  db.exec("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
  const row = db.prepare("SELECT MAX(version) AS version FROM schema_version").get() as {
    version: number | null;
  };
  const current = row.version ?? 0;
  const known = SQLITE_MIGRATIONS.length;
  if (current > known) {
    throw new EngineError(
      "STORE_SCHEMA_TOO_NEW",
      409,
      `The audit store ${filePath} has schema version ${current}, but this @aa/engine knows versions up to ${known}; upgrade @aa/engine (or the aa CLI) to open it`,
      { path: filePath, storeVersion: current, supportedVersion: known },
    );
  }
  if (current === known) return;
  db.exec("BEGIN IMMEDIATE");
  try {
    // Re-read under the write lock: another process may have migrated meanwhile.
    const again =
      (db.prepare("SELECT MAX(version) AS version FROM schema_version").get() as { version: number | null })
        .version ?? 0;
    for (let version = again + 1; version <= known; version++) {
      db.exec(SQLITE_MIGRATIONS[version - 1]!);
      db.prepare("INSERT INTO schema_version (version) VALUES (?)").run(version);
    }
    db.exec("COMMIT");
  } catch (error) {
    safelyRollback(db);
    throw error;
  }
}

function safelyRollback(db: DatabaseSync): void {
  try {
    db.exec("ROLLBACK");
  } catch {
    // No transaction open (BEGIN itself failed): nothing to undo.
  }
}

const EVENT_ROW_WIDTH = 7;
/** Rows per INSERT statement, widest first; 64 rows = 448 parameters, well under SQLite's limit. */
const INSERT_WIDTHS = [64, 16, 4, 1] as const;
const INSERT_EVENTS_SQL = "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES ";

const EVENT_COLUMNS = "id, seq, hash, record AS text, agent, action_type AS actionType";
const APPROVAL_COLUMNS = `id, org, agent_id AS agentId, action_type AS actionType, state, created_at AS createdAt,
  expires_at AS expiresAt, audit_event_id AS auditEventId, policy_name AS policyName, binding_hash AS bindingHash,
  decided_by AS decidedBy, reason, decided_at AS decidedAt, consumed_at AS consumedAt, request`;
const OUTCOME_COLUMNS =
  "audit_event_id AS auditEventId, agent_id AS agentId, status, message, metadata, updated_at AS updatedAt";

const DELEGATION_COLUMNS = `id, org, parent_agent_id AS parentAgentId, child_agent_id AS childAgentId, name,
  capabilities, issued_at AS issuedAt, expires_at AS expiresAt, revoked_at AS revokedAt, revoked_by AS revokedBy,
  parent_delegation_id AS parentDelegationId, expired_at AS expiredAt`;

/** A delegation row as read (capabilities are stored as a JSON array). */
function toDelegationRow(raw: unknown): DelegationRow {
  const row = raw as Omit<DelegationRow, "capabilities"> & { capabilities: string };
  return { ...row, capabilities: JSON.parse(row.capabilities) as string[] };
}

function prepareAll(db: DatabaseSync): Statements {
  const p = (sql: string) => db.prepare(sql);
  const verifyRows = p(VERIFY_ROWS_SQL);
  verifyRows.setReturnArrays(true);
  // Read once per commit: an array row skips building an object with a named property (~0.3 µs).
  const dataVersion = p("PRAGMA data_version");
  dataVersion.setReturnArrays(true);
  return {
    beginImmediate: p("BEGIN IMMEDIATE"),
    commit: p("COMMIT"),
    dataVersion,
    verifyRows,
    idAtSeq: p(ID_AT_SEQ_SQL),
    head: p("SELECT seq, hash FROM audit_events WHERE org = ? ORDER BY seq DESC LIMIT 1"),
    insertEvents: new Map(
      INSERT_WIDTHS.map((width) => [
        width,
        p(INSERT_EVENTS_SQL + new Array(width).fill("(?, ?, ?, ?, ?, ?, ?)").join(", ")),
      ]),
    ),
    readEvents: p(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?`),
    readEventsByType: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq > ? AND action_type = ? ORDER BY seq LIMIT ?`,
    ),
    // instr() is a byte search over the stored text (no index), for the trace filter.
    readEventsContaining: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq > ? AND instr(record, ?) > 0 ORDER BY seq LIMIT ?`,
    ),
    readEventsByTypeContaining: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq > ? AND action_type = ? AND instr(record, ?) > 0 ORDER BY seq LIMIT ?`,
    ),
    // Newest first: the (org, seq) index walked backwards, so the first page costs the same at
    // any chain length.
    readEventsBefore: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq < ? ORDER BY seq DESC LIMIT ?`,
    ),
    readEventsBeforeByType: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq < ? AND action_type = ? ORDER BY seq DESC LIMIT ?`,
    ),
    readEventsBeforeContaining: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq < ? AND instr(record, ?) > 0 ORDER BY seq DESC LIMIT ?`,
    ),
    readEventsBeforeByTypeContaining: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq < ? AND action_type = ? AND instr(record, ?) > 0 ORDER BY seq DESC LIMIT ?`,
    ),
    getEventById: p(
      `SELECT e.id, e.seq, e.hash, e.record AS text, e.agent, e.action_type AS actionType FROM audit_event_ids i
       JOIN audit_events e ON e.org = i.org AND e.seq = i.seq AND e.id = i.id WHERE i.id = ? AND i.org = ?`,
    ),
    getIdEntry: p("SELECT seq FROM audit_event_ids WHERE id = ? AND org = ?"),
    getRecentEventById: p(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ?1 AND id = ?2 AND
       seq > COALESCE((SELECT seq FROM audit_event_id_marks WHERE org = ?1), 0)`,
    ),
    scanEventById: p(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND id = ?`),
    getIdMark: p("SELECT seq FROM audit_event_id_marks WHERE org = ?"),
    setIdMark: p(
      "INSERT INTO audit_event_id_marks (org, seq) VALUES (?, ?) ON CONFLICT (org) DO UPDATE SET seq = excluded.seq",
    ),
    copyIds: p(
      "INSERT OR IGNORE INTO audit_event_ids (id, org, seq) SELECT id, org, seq FROM audit_events WHERE org = ?1 AND seq > ?2",
    ),
    getEventAtSeq: p(`SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = ? AND seq = ?`),
    getIdempotency: p("SELECT fingerprint, result FROM idempotency_keys WHERE org = ? AND key = ?"),
    insertIdempotency: p("INSERT INTO idempotency_keys (org, key, fingerprint, result) VALUES (?, ?, ?, ?)"),
    upsertOutcome: p(
      `INSERT INTO outcomes (org, audit_event_id, agent_id, status, message, metadata, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (org, audit_event_id) DO UPDATE SET agent_id = excluded.agent_id, status = excluded.status,
       message = excluded.message, metadata = excluded.metadata, updated_at = excluded.updated_at`,
    ),
    getOutcome: p(`SELECT ${OUTCOME_COLUMNS} FROM outcomes WHERE org = ? AND audit_event_id = ?`),
    listOutcomes: p(
      `SELECT ${OUTCOME_COLUMNS} FROM outcomes WHERE org = ? AND audit_event_id > ? ORDER BY audit_event_id LIMIT ?`,
    ),
    getApproval: p(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = ? AND id = ?`),
    insertApproval: p(
      `INSERT INTO approvals (org, id, agent_id, action_type, state, created_at, expires_at, audit_event_id, policy_name, binding_hash, request)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    transitionApproval: p(
      "UPDATE approvals SET state = ?, decided_by = ?, reason = ?, decided_at = ? WHERE org = ? AND id = ? AND state = 'pending'",
    ),
    consumeApproval: p(
      "UPDATE approvals SET consumed_at = ? WHERE org = ? AND id = ? AND state = 'approved' AND consumed_at IS NULL",
    ),
    listApprovals: p(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = ? ORDER BY created_at, id`),
    listApprovalsByState: p(
      `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = ? AND state = ? ORDER BY created_at, id`,
    ),
    upsertAgentControl: p(
      `INSERT INTO agent_controls (org, agent_id, contained, changed_by, reason, changed_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (org, agent_id) DO UPDATE SET contained = excluded.contained, changed_by = excluded.changed_by,
       reason = excluded.reason, changed_at = excluded.changed_at`,
    ),
    insertDelegation: p(
      `INSERT INTO delegations (org, id, parent_agent_id, child_agent_id, name, capabilities, issued_at, expires_at, parent_delegation_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    revokeDelegation: p(
      "UPDATE delegations SET revoked_at = ?, revoked_by = ? WHERE org = ? AND id = ? AND revoked_at IS NULL",
    ),
    expireDelegation: p(
      "UPDATE delegations SET expired_at = ? WHERE org = ? AND id = ? AND expired_at IS NULL AND revoked_at IS NULL",
    ),
    getDelegation: p(`SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = ? AND id = ?`),
    activeDelegationOfChild: p(
      `SELECT ${DELEGATION_COLUMNS} FROM delegations
       WHERE org = ? AND child_agent_id = ? AND revoked_at IS NULL AND expires_at > ? LIMIT 1`,
    ),
    listDelegations: p(`SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = ? ORDER BY issued_at, id`),
    listLiveDelegations: p(
      `SELECT ${DELEGATION_COLUMNS} FROM delegations
       WHERE org = ?1 AND (expires_at > ?2 OR (expired_at IS NULL AND revoked_at IS NULL)) ORDER BY issued_at, id`,
    ),
    listAgentControls: p(
      `SELECT agent_id AS agentId, contained, changed_by AS changedBy, reason, changed_at AS changedAt
       FROM agent_controls WHERE org = ? ORDER BY agent_id`,
    ),
    insertCheckpoint: p(
      "INSERT OR IGNORE INTO checkpoints (org, size, head_hash, time, kid, signature) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    listCheckpoints: p(
      "SELECT org, size, head_hash AS headHash, time, kid, signature FROM checkpoints WHERE org = ? ORDER BY size",
    ),
  };
}
