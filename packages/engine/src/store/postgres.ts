/**
 * PostgreSQL store (`pg`, loaded only for `postgres://` URLs). Several engines (gateway replicas)
 * may share one database: appends to an org's chain serialise on that org's `chain_heads` row
 * (`SELECT ... FOR UPDATE`). A group-commit batch of plain records is one autocommit call of the
 * server-side `aa_append_sealed`, which links, hashes, inserts and commits while holding the lock,
 * so the lock never waits on a round trip to Node; batches with conditional effects (approvals,
 * idempotency) are sealed here under the same lock. See docs/audit.md, "PostgreSQL scale-out".
 *
 * URL parameters: `?schema=<name>`, `?early_lock_release=on|off` (see {@link PostgresStore.open}).
 */
import type { ClientConfig, Pool, PoolClient } from "pg";
import { GENESIS_HASH, sealRecord } from "../chain/record.js";
import { EngineError, storeFailure } from "../errors.js";
import type { ApprovalState } from "../types.js";
import { delegationConflict, effectApprovalId, effectConflict, idempotencyTaken } from "./effects.js";
import { POSTGRES_MIGRATIONS } from "./postgres/migrations.js";
import { Announcer, channelFor, type PendingChange, watchChannel } from "./postgres/notify.js";
import type {
  AgentControlRow,
  AppendOutcome,
  ApprovalRow,
  AuditStore,
  ChainHead,
  Checkpoint,
  CounterEntry,
  CounterVerdict,
  DelegationQuery,
  DelegationRow,
  IdempotencyRow,
  OutcomeRow,
  PendingAppend,
  StoreChange,
  StoredEvent,
  StoredKeys,
} from "./types.js";

export { POSTGRES_MIGRATIONS };

const EVENT_COLUMNS = 'id, seq::int8 AS seq, hash, record AS text, agent, action_type AS "actionType"';
const DELEGATION_COLUMNS = `id, org, parent_agent_id AS "parentAgentId", child_agent_id AS "childAgentId", name,
  capabilities, issued_at AS "issuedAt", expires_at AS "expiresAt", revoked_at AS "revokedAt",
  revoked_by AS "revokedBy", parent_delegation_id AS "parentDelegationId", expired_at AS "expiredAt"`;

/** A delegation row as read (capabilities are stored as a JSON array). */
function toDelegationRow(raw: unknown): DelegationRow {
  const row = raw as Omit<DelegationRow, "capabilities"> & { capabilities: string };
  return { ...row, capabilities: JSON.parse(row.capabilities) as string[] };
}

const APPROVAL_COLUMNS = `id, org, agent_id AS "agentId", action_type AS "actionType", state, created_at AS "createdAt",
  expires_at AS "expiresAt", audit_event_id AS "auditEventId", policy_name AS "policyName", binding_hash AS "bindingHash",
  decided_by AS "decidedBy", reason, decided_at AS "decidedAt", consumed_at AS "consumedAt", request`;
const OUTCOME_COLUMNS = `audit_event_id AS "auditEventId", agent_id AS "agentId", status, message, metadata, updated_at AS "updatedAt"`;

/** A synchronous commit whose WAL flush covers every commit record written before it. */
const MARK_FLUSH =
  "INSERT INTO flush_marks (pid, n) VALUES (pg_backend_pid(), 1) ON CONFLICT (pid) DO UPDATE SET n = flush_marks.n + 1";

/** Joins the parts of the encoded records sent to `aa_append_sealed`; never raw in canonical JSON. */
const PART_SEPARATOR = "\u0001";

/** Plain records whose encoded parts cannot be confused with the separator. */
function sealableByServer(item: PendingAppend): boolean {
  const { pre, mid, post } = item.encoded;
  return (
    (item.effects === undefined || item.effects.length === 0) &&
    !pre.includes(PART_SEPARATOR) &&
    !mid.includes(PART_SEPARATOR) &&
    !post.includes(PART_SEPARATOR)
  );
}

/** What a committed batch changed, for the other replicas' notification. */
function changeOf(items: PendingAppend[], outcomes: AppendOutcome[]): PendingChange | undefined {
  let seq = 0;
  const approvals = new Set<string>();
  let controls = false;
  for (let i = 0; i < items.length; i++) {
    const outcome = outcomes[i]!;
    if (!outcome.ok) continue;
    seq = Math.max(seq, outcome.seq);
    for (const effect of items[i]!.effects ?? []) {
      if (effect.type === "approval.transition" || effect.type === "approval.consume") {
        approvals.add(effect.approvalId);
      } else if (effect.type === "agent.control" || effect.type === "delegation.revoke") {
        controls = true;
      }
    }
  }
  return seq === 0 ? undefined : { seq, approvals, controls };
}

function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || 5432}${u.pathname}`;
  } catch {
    return "(unparseable URL)";
  }
}

export class PostgresStore implements AuditStore {
  readonly kind = "postgres" as const;
  readonly immediate = false;
  readonly #pool: Pool;
  /** Orgs whose chain_heads row is known to exist (created on first append). */
  readonly #knownOrgs = new Set<string>();
  /**
   * The server links and hashes plain records itself (`aa_append_sealed`); only when it stores
   * text as UTF-8, so its SHA-256 covers the same bytes Node's would.
   */
  #serverSeals = false;

  /** See {@link PostgresStore.open}: `early_lock_release=on`. */
  readonly #earlyLockRelease: boolean;
  /** How to open the dedicated LISTEN connection (same server, user and schema as the pool). */
  readonly #connection: ClientConfig;
  readonly #pg: typeof import("pg");
  /** The NOTIFY channel of this store's schema. */
  readonly #channel: string;
  readonly #announcer: Announcer;
  readonly #watches = new Set<{ stop: () => void }>();

  private constructor(
    pg: typeof import("pg"),
    connection: ClientConfig,
    schema: string | null,
    earlyLockRelease: boolean,
  ) {
    this.#pg = pg;
    this.#connection = connection;
    this.#pool = new pg.Pool({ ...connection, max: 4 });
    this.#pool.on("error", () => {
      // An idle client died (server restart); the pool replaces it on next use.
    });
    this.#earlyLockRelease = earlyLockRelease;
    this.#channel = channelFor(schema);
    // A hint, not a record: its transaction need not wait for a WAL flush (pg_notify assigns a
    // transaction id, so with the default setting every hint would cost a disk flush).
    this.#announcer = new Announcer((payload) =>
      this.#pool.query({
        name: "aa_notify",
        text: "SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, $2)",
        values: [this.#channel, payload],
      }),
    );
  }

  /**
   * Opens (and migrates) the store. URL parameters, removed before connecting:
   * - `schema=<name>`: keep the tables in a schema of their own.
   * - `early_lock_release=on` (default `off`): release an org's chain-head lock as soon as an
   *   append's commit record is in the WAL instead of after it is flushed to disk, so replicas
   *   queue behind the insert only, not behind the disk. An append still resolves only after its
   *   commit is on disk (a synchronous marker commit flushes the WAL past it). The cost: for about
   *   one WAL flush, other sessions can read records that are not yet durable; if the server
   *   crashes in that window they are lost (their callers were never told they committed) and their
   *   positions are reused, so an `audit()` page or export taken in that window would disagree
   *   with the chain afterwards.
   */
  static async open(url: string): Promise<PostgresStore> {
    let pg: typeof import("pg");
    try {
      pg = (await import("pg")).default as unknown as typeof import("pg");
    } catch (cause) {
      throw new EngineError(
        "STORE_UNAVAILABLE",
        503,
        "A postgres:// store needs the `pg` package: install it next to @aa/engine (npm install pg)",
        {},
        { cause },
      );
    }
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema");
    parsed.searchParams.delete("schema");
    if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new EngineError(
        "INVALID_OPTIONS",
        400,
        "the `schema` URL parameter must be a lower-case SQL identifier",
        {
          option: "store",
        },
      );
    }
    const earlyLockRelease = parsed.searchParams.get("early_lock_release") ?? "off";
    parsed.searchParams.delete("early_lock_release");
    if (earlyLockRelease !== "on" && earlyLockRelease !== "off") {
      throw new EngineError(
        "INVALID_OPTIONS",
        400,
        `the \`early_lock_release\` URL parameter must be \`on\` or \`off\`, got ${JSON.stringify(earlyLockRelease)}`,
        { option: "store" },
      );
    }
    const connection: ClientConfig = {
      connectionString: parsed.toString(),
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    };
    const store = new PostgresStore(pg, connection, schema, earlyLockRelease === "on");
    try {
      await store.#migrate(schema);
    } catch (error) {
      await store.#pool.end().catch(() => undefined);
      if (error instanceof EngineError) throw error;
      throw new EngineError(
        "STORE_UNAVAILABLE",
        503,
        `Cannot use the PostgreSQL audit store at ${describeUrl(url)}: ${(error as Error).message}`,
        { store: describeUrl(url) },
        { cause: error, retryable: true },
      );
    }
    return store;
  }

  async #migrate(schema: string | null): Promise<void> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(7391)");
      if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
      await client.query("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)");
      const { rows } = await client.query<{ version: number | null }>(
        "SELECT MAX(version) AS version FROM schema_version",
      );
      const current = rows[0]?.version ?? 0;
      const known = POSTGRES_MIGRATIONS.length;
      if (current > known) {
        throw new EngineError(
          "STORE_SCHEMA_TOO_NEW",
          409,
          `The PostgreSQL audit store has schema version ${current}, but this @aa/engine knows versions up to ${known}; upgrade @aa/engine to use it`,
          { storeVersion: current, supportedVersion: known },
        );
      }
      for (let version = current + 1; version <= known; version++) {
        await client.query(POSTGRES_MIGRATIONS[version - 1]!);
        await client.query("INSERT INTO schema_version (version) VALUES ($1)", [version]);
      }
      await client.query("COMMIT");
      const { rows: encoding } = await client.query<{ server_encoding: string }>("SHOW server_encoding");
      this.#serverSeals = encoding[0]?.server_encoding === "UTF8";
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async appendBatch(org: string, items: PendingAppend[]): Promise<AppendOutcome[]> {
    if (!this.#knownOrgs.has(org)) {
      try {
        await this.#pool.query(
          "INSERT INTO chain_heads (org, seq, hash) VALUES ($1, 0, $2) ON CONFLICT (org) DO NOTHING",
          [org, GENESIS_HASH],
        );
      } catch (error) {
        throw storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
      }
      this.#knownOrgs.add(org);
    }
    const outcomes =
      this.#serverSeals && items.every(sealableByServer)
        ? await this.#appendSealedByServer(org, items)
        : await this.#appendSealedHere(org, items);
    // After the commit, outside the lock: wake the other replicas' waiters and subscribers.
    const change = changeOf(items, outcomes);
    if (change) this.#announcer.announce(org, change);
    return outcomes;
  }

  /**
   * Pushes a hint after every commit to this database's schema by any replica (LISTEN/NOTIFY on
   * one dedicated connection per process and schema, opened on first use and reconnected with
   * backoff when lost). See {@link StoreChange}; the caller keeps polling as the fallback.
   */
  watch(listener: (change: StoreChange) => void): { ready: Promise<void>; stop: () => void } {
    const shared = watchChannel(this.#connection, this.#pg, this.#channel, listener);
    const watch = {
      ready: shared.ready,
      stop: () => {
        if (this.#watches.delete(watch)) shared.stop();
      },
    };
    this.#watches.add(watch);
    return watch;
  }

  /**
   * One autocommit statement: the server takes the head lock, links and hashes the records, inserts
   * them, moves the head and commits. Everything Node does (joining the parts, encoding the
   * parameters) happens before the lock is taken.
   */
  async #appendSealedByServer(org: string, items: PendingAppend[]): Promise<AppendOutcome[]> {
    const n = items.length;
    if (n === 0) return [];
    const ids: string[] = new Array(n);
    const agents: string[] = new Array(n);
    const actionTypes: string[] = new Array(n);
    let parts = "";
    for (let i = 0; i < n; i++) {
      const { fields, encoded } = items[i]!;
      ids[i] = fields.id;
      agents[i] = fields.agent;
      actionTypes[i] = fields.actionType;
      parts += `${i === 0 ? "" : PART_SEPARATOR}${encoded.pre}${PART_SEPARATOR}${encoded.mid}${PART_SEPARATOR}${encoded.post}`;
    }
    let sealed: string;
    try {
      const { rows } = await this.#pool.query<{ sealed: string }>(
        this.#earlyLockRelease
          ? {
              name: "aa_append_flushed",
              text: "CALL aa_append_flushed($1, $2, $3, $4, $5, NULL)",
              values: [org, ids, agents, actionTypes, parts],
            }
          : {
              name: "aa_append_sealed",
              text: "SELECT aa_append_sealed($1, $2, $3, $4, $5) AS sealed",
              values: [org, ids, agents, actionTypes, parts],
            },
      );
      sealed = rows[0]!.sealed;
    } catch (error) {
      throw storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
    }
    // "<first seq>:<64 hex chars per record>"
    const colon = sealed.indexOf(":");
    const first = Number(sealed.slice(0, colon));
    if (!Number.isSafeInteger(first) || sealed.length !== colon + 1 + 64 * n) {
      throw storeFailure(
        "STORE_WRITE_FAILED",
        "Appending audit records",
        new Error(`aa_append_sealed returned an unexpected result for ${n} records`),
      );
    }
    const out: AppendOutcome[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const at = colon + 1 + 64 * i;
      out[i] = { ok: true, seq: first + i, hash: sealed.slice(at, at + 64) };
    }
    return out;
  }

  /** Effects need conditional checks inside the transaction: link and hash here, under the head lock. */
  async #appendSealedHere(org: string, items: PendingAppend[]): Promise<AppendOutcome[]> {
    let client: PoolClient | undefined;
    try {
      client = await this.#pool.connect();
      // BEGIN and the head lock in one round trip (simple protocol, org escaped as a literal).
      const opened = (await client.query(
        `BEGIN; SELECT seq, hash FROM chain_heads WHERE org = ${client.escapeLiteral(org)} FOR UPDATE`,
      )) as unknown as { rows: { seq: string; hash: string }[] }[];
      const head = opened[1]!.rows[0]!;
      let seq = Number(head.seq);
      let prev = head.hash;
      const out: AppendOutcome[] = new Array(items.length);
      const seqs: number[] = [];
      const ids: string[] = [];
      const hashes: string[] = [];
      const agents: string[] = [];
      const actionTypes: string[] = [];
      const texts: string[] = [];
      const withEffects: PendingAppend[] = [];
      for (let i = 0; i < items.length; i++) {
        const item = items[i]!;
        if (item.effects) {
          const conflict = await this.#conflict(client, org, item);
          if (conflict) {
            out[i] = { ok: false, error: conflict };
            continue;
          }
          withEffects.push(item);
        }
        seq++;
        const { text, hash } = sealRecord(item.encoded, prev, seq);
        seqs.push(seq);
        ids.push(item.fields.id);
        hashes.push(hash);
        agents.push(item.fields.agent);
        actionTypes.push(item.fields.actionType);
        texts.push(text);
        prev = hash;
        out[i] = { ok: true, seq, hash };
      }
      if (seqs.length > 0) {
        // One statement appends the batch and moves the head.
        await client.query(
          `WITH appended AS (
             INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record)
             SELECT $1, * FROM unnest($2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
             RETURNING 1)
           UPDATE chain_heads SET seq = $8, hash = $9 WHERE org = $1 AND (SELECT count(*) FROM appended) = $10`,
          [org, seqs, ids, hashes, agents, actionTypes, texts, seq, prev, seqs.length],
        );
      }
      for (const item of withEffects) await this.#apply(client, org, item);
      await client.query("COMMIT");
      return out;
    } catch (error) {
      if (client) await client.query("ROLLBACK").catch(() => undefined);
      throw storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
    } finally {
      client?.release();
    }
  }

  async #conflict(client: PoolClient, org: string, item: PendingAppend): Promise<EngineError | undefined> {
    for (const effect of item.effects!) {
      if (effect.type === "idempotency.insert") {
        const { rowCount } = await client.query(
          "SELECT 1 FROM idempotency_keys WHERE org = $1 AND key = $2",
          [org, effect.key],
        );
        if (rowCount) return idempotencyTaken(effect.key);
        continue;
      }
      if (effect.type === "delegation.insert") {
        const row = effect.delegation;
        const { rows: active } = await client.query(
          `SELECT ${DELEGATION_COLUMNS} FROM delegations
           WHERE org = $1 AND child_agent_id = $2 AND revoked_at IS NULL AND expires_at > $3 LIMIT 1`,
          [org, row.childAgentId, row.issuedAt],
        );
        const parent =
          row.parentDelegationId === null
            ? undefined
            : (
                await client.query(
                  `SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = $1 AND id = $2 FOR UPDATE`,
                  [org, row.parentDelegationId],
                )
              ).rows[0];
        const conflict = delegationConflict(effect, {
          ...(active[0] ? { activeSameChild: toDelegationRow(active[0]) } : {}),
          ...(parent ? { parent: toDelegationRow(parent) } : {}),
        });
        if (conflict) return conflict;
        continue;
      }
      if (effect.type === "delegation.revoke" || effect.type === "delegation.expire") {
        const { rows } = await client.query(
          `SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = $1 AND id = $2 FOR UPDATE`,
          [org, effect.delegationId],
        );
        const conflict = delegationConflict(effect, rows[0] ? { current: toDelegationRow(rows[0]) } : {});
        if (conflict) return conflict;
        continue;
      }
      const id = effectApprovalId(effect);
      if (id === undefined) continue;
      const { rows } = await client.query<ApprovalRow>(
        `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = $1 AND id = $2 FOR UPDATE`,
        [org, id],
      );
      const conflict = effectConflict(effect, rows[0]);
      if (conflict) return conflict;
    }
    return undefined;
  }

  async #apply(client: PoolClient, org: string, item: PendingAppend): Promise<void> {
    for (const effect of item.effects!) {
      switch (effect.type) {
        case "approval.insert": {
          const a = effect.approval;
          await client.query(
            `INSERT INTO approvals (org, id, agent_id, action_type, state, created_at, expires_at, audit_event_id, policy_name, binding_hash, request)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
            [
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
            ],
          );
          break;
        }
        case "approval.transition":
          await client.query(
            "UPDATE approvals SET state = $1, decided_by = $2, reason = $3, decided_at = $4 WHERE org = $5 AND id = $6 AND state = 'pending'",
            [effect.to, effect.decidedBy, effect.reason, effect.at, org, effect.approvalId],
          );
          break;
        case "agent.control": {
          const c = effect.control;
          await client.query(
            `INSERT INTO agent_controls (org, agent_id, contained, changed_by, reason, changed_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (org, agent_id) DO UPDATE SET contained = excluded.contained, changed_by = excluded.changed_by,
             reason = excluded.reason, changed_at = excluded.changed_at`,
            [org, c.agentId, c.contained, c.changedBy, c.reason, c.changedAt],
          );
          break;
        }
        case "delegation.insert": {
          const d = effect.delegation;
          await client.query(
            `INSERT INTO delegations (org, id, parent_agent_id, child_agent_id, name, capabilities, issued_at, expires_at, parent_delegation_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
            [
              org,
              d.id,
              d.parentAgentId,
              d.childAgentId,
              d.name,
              JSON.stringify(d.capabilities),
              d.issuedAt,
              d.expiresAt,
              d.parentDelegationId,
            ],
          );
          break;
        }
        case "delegation.revoke":
          await client.query(
            "UPDATE delegations SET revoked_at = $1, revoked_by = $2 WHERE org = $3 AND id = $4 AND revoked_at IS NULL",
            [effect.at, effect.revokedBy, org, effect.delegationId],
          );
          break;
        case "delegation.expire":
          await client.query(
            "UPDATE delegations SET expired_at = $1 WHERE org = $2 AND id = $3 AND expired_at IS NULL AND revoked_at IS NULL",
            [effect.at, org, effect.delegationId],
          );
          break;
        case "approval.consume":
          await client.query(
            "UPDATE approvals SET consumed_at = $1 WHERE org = $2 AND id = $3 AND state = 'approved' AND consumed_at IS NULL",
            [effect.at, org, effect.approvalId],
          );
          break;
        case "idempotency.insert":
          await client.query(
            "INSERT INTO idempotency_keys (org, key, fingerprint, result) VALUES ($1, $2, $3, $4)",
            [org, effect.key, effect.fingerprint, effect.result],
          );
          break;
      }
    }
  }

  async #rows<T>(sql: string, params: unknown[]): Promise<T[]> {
    const { rows } = await this.#pool.query(sql, params);
    return rows as T[];
  }

  /**
   * Reads of the chain. With early lock release another replica's append is visible once its
   * commit record is in the WAL, possibly before it is on disk; a synchronous marker commit after
   * the read flushes the WAL past every commit the read could have seen, so the store never hands
   * out a record a server crash could still take back.
   */
  async #chainRows<T>(sql: string, params: unknown[]): Promise<T[]> {
    const rows = await this.#rows<T>(sql, params);
    if (this.#earlyLockRelease) await this.#pool.query(MARK_FLUSH);
    return rows;
  }

  async head(org: string): Promise<ChainHead> {
    const rows = await this.#chainRows<{ seq: string; hash: string }>(
      "SELECT seq, hash FROM chain_heads WHERE org = $1",
      [org],
    );
    return rows[0] ? { seq: Number(rows[0].seq), hash: rows[0].hash } : { seq: 0, hash: GENESIS_HASH };
  }

  readEvents(
    org: string,
    afterSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): Promise<StoredEvent[]> {
    return this.#readEventPage(org, "seq > $2", "ORDER BY seq", afterSeq, limit, actionType, textContains);
  }

  readEventsBefore(
    org: string,
    beforeSeq: number,
    limit: number,
    actionType?: string,
    textContains?: string,
  ): Promise<StoredEvent[]> {
    // The primary key (org, seq) scanned backwards: the newest page is cheap at any chain length.
    return this.#readEventPage(
      org,
      "seq < $2",
      "ORDER BY seq DESC",
      beforeSeq,
      limit,
      actionType,
      textContains,
    );
  }

  async #readEventPage(
    org: string,
    seqBound: "seq > $2" | "seq < $2",
    orderBy: "ORDER BY seq" | "ORDER BY seq DESC",
    seq: number,
    limit: number,
    actionType: string | undefined,
    textContains: string | undefined,
  ): Promise<StoredEvent[]> {
    const where = ["org = $1", seqBound];
    const values: unknown[] = [org, seq];
    if (actionType !== undefined) {
      values.push(actionType);
      where.push(`action_type = $${values.length}`);
    }
    if (textContains !== undefined) {
      // strpos() is a plain substring search over the stored text (no index), for the trace filter.
      values.push(textContains);
      where.push(`strpos(record, $${values.length}) > 0`);
    }
    values.push(limit);
    const rows = await this.#chainRows<StoredEvent>(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE ${where.join(" AND ")} ${orderBy} LIMIT $${values.length}`,
      values,
    );
    for (const row of rows) row.seq = Number(row.seq);
    return rows;
  }

  async getEvent(org: string, id: string): Promise<StoredEvent | undefined> {
    const rows = await this.#chainRows<StoredEvent>(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = $1 AND id = $2`,
      [org, id],
    );
    if (rows[0]) rows[0].seq = Number(rows[0].seq);
    return rows[0];
  }

  async getEventAtSeq(org: string, seq: number): Promise<StoredEvent | undefined> {
    const rows = await this.#chainRows<StoredEvent>(
      `SELECT ${EVENT_COLUMNS} FROM audit_events WHERE org = $1 AND seq = $2`,
      [org, seq],
    );
    if (rows[0]) rows[0].seq = Number(rows[0].seq);
    return rows[0];
  }

  async getIdempotency(org: string, key: string): Promise<IdempotencyRow | undefined> {
    return (
      await this.#rows<IdempotencyRow>(
        "SELECT fingerprint, result FROM idempotency_keys WHERE org = $1 AND key = $2",
        [org, key],
      )
    )[0];
  }

  async upsertOutcome(org: string, row: OutcomeRow): Promise<void> {
    await this.#pool.query(
      `INSERT INTO outcomes (org, audit_event_id, agent_id, status, message, metadata, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (org, audit_event_id) DO UPDATE SET agent_id = excluded.agent_id, status = excluded.status,
       message = excluded.message, metadata = excluded.metadata, updated_at = excluded.updated_at`,
      [org, row.auditEventId, row.agentId, row.status, row.message, row.metadata, row.updatedAt],
    );
  }

  async getOutcome(org: string, auditEventId: string): Promise<OutcomeRow | undefined> {
    return (
      await this.#rows<OutcomeRow>(
        `SELECT ${OUTCOME_COLUMNS} FROM outcomes WHERE org = $1 AND audit_event_id = $2`,
        [org, auditEventId],
      )
    )[0];
  }

  async getOutcomes(org: string, auditEventIds: readonly string[]): Promise<OutcomeRow[]> {
    if (auditEventIds.length === 0) return [];
    return this.#rows<OutcomeRow>(
      `SELECT ${OUTCOME_COLUMNS} FROM outcomes WHERE org = $1 AND audit_event_id = ANY ($2::text[])`,
      [org, auditEventIds],
    );
  }

  async listOutcomes(org: string, afterAuditEventId: string | null, limit: number): Promise<OutcomeRow[]> {
    return this.#rows<OutcomeRow>(
      `SELECT ${OUTCOME_COLUMNS} FROM outcomes WHERE org = $1 AND audit_event_id > $2 ORDER BY audit_event_id COLLATE "C" LIMIT $3`,
      [org, afterAuditEventId ?? "", limit],
    );
  }

  async getApproval(org: string, id: string): Promise<ApprovalRow | undefined> {
    return (
      await this.#rows<ApprovalRow>(`SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = $1 AND id = $2`, [
        org,
        id,
      ])
    )[0];
  }

  async listApprovals(org: string, state?: ApprovalState): Promise<ApprovalRow[]> {
    return state === undefined
      ? this.#rows<ApprovalRow>(
          `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = $1 ORDER BY created_at, id`,
          [org],
        )
      : this.#rows<ApprovalRow>(
          `SELECT ${APPROVAL_COLUMNS} FROM approvals WHERE org = $1 AND state = $2 ORDER BY created_at, id`,
          [org, state],
        );
  }

  async listAgentControls(org: string): Promise<AgentControlRow[]> {
    return await this.#rows<AgentControlRow>(
      `SELECT agent_id AS "agentId", contained, changed_by AS "changedBy", reason, changed_at AS "changedAt"
       FROM agent_controls WHERE org = $1 ORDER BY agent_id`,
      [org],
    );
  }

  async getDelegation(org: string, id: string): Promise<DelegationRow | undefined> {
    const rows = await this.#rows(
      `SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = $1 AND id = $2`,
      [org, id],
    );
    return rows[0] ? toDelegationRow(rows[0]) : undefined;
  }

  async listDelegations(org: string, query: DelegationQuery = {}): Promise<DelegationRow[]> {
    const rows =
      query.liveAt === undefined
        ? await this.#rows(
            `SELECT ${DELEGATION_COLUMNS} FROM delegations WHERE org = $1 ORDER BY issued_at, id`,
            [org],
          )
        : await this.#rows(
            `SELECT ${DELEGATION_COLUMNS} FROM delegations
             WHERE org = $1 AND (expires_at > $2 OR (expired_at IS NULL AND revoked_at IS NULL)) ORDER BY issued_at, id`,
            [org, query.liveAt],
          );
    return rows.map(toDelegationRow);
  }

  async insertCheckpoint(cp: Checkpoint): Promise<void> {
    await this.#pool.query(
      "INSERT INTO checkpoints (org, size, head_hash, time, kid, signature) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
      [cp.org, cp.size, cp.headHash, cp.time, cp.kid, cp.signature],
    );
  }

  async listCheckpoints(org: string): Promise<Checkpoint[]> {
    const rows = await this.#rows<Checkpoint>(
      `SELECT org, size::int8 AS size, head_hash AS "headHash", time, kid, signature FROM checkpoints WHERE org = $1 ORDER BY size`,
      [org],
    );
    for (const row of rows) row.size = Number(row.size);
    return rows;
  }

  async loadOrCreateKeys(org: string, create: () => StoredKeys): Promise<StoredKeys> {
    const existing = await this.#rows<{ data: string }>("SELECT data FROM engine_keys WHERE org = $1", [org]);
    if (existing[0]) return JSON.parse(existing[0].data) as StoredKeys;
    await this.#pool.query(
      "INSERT INTO engine_keys (org, data) VALUES ($1, $2) ON CONFLICT (org) DO NOTHING",
      [org, JSON.stringify(create())],
    );
    // Whoever inserted first wins; everyone uses the stored keys.
    const stored = await this.#rows<{ data: string }>("SELECT data FROM engine_keys WHERE org = $1", [org]);
    return JSON.parse(stored[0]!.data) as StoredKeys;
  }

  async updateKeys(org: string, update: (current: StoredKeys) => StoredKeys): Promise<StoredKeys> {
    const client = await this.#pool.connect();
    try {
      await client.query("BEGIN");
      const { rows } = await client.query<{ data: string }>(
        "SELECT data FROM engine_keys WHERE org = $1 FOR UPDATE",
        [org],
      );
      if (!rows[0]) throw new Error(`no keys for org ${org} yet`);
      const keys = update(JSON.parse(rows[0].data) as StoredKeys);
      await client.query("UPDATE engine_keys SET data = $2 WHERE org = $1", [org, JSON.stringify(keys)]);
      await client.query("COMMIT");
      return keys;
    } catch (error) {
      await client.query("ROLLBACK").catch(() => {});
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * One statement for the whole batch (`aa_take_counters`, migration 6), in call order. Each
   * counter is sent once however many calls touch it; every count a batch makes in a counter falls
   * in one window (the server reads its clock once), so the counters' state after the batch is
   * each entry's state.
   */
  async takeCounters(org: string, calls: CounterEntry[][]): Promise<CounterVerdict[]> {
    const index = new Map<string, number>();
    const names: string[] = [];
    // Numbers and booleans go as array literals built here: the driver's generic array encoding
    // (an escaping pass per element) cost more Node CPU than the whole server-side step.
    let counter = "";
    let limits = "";
    let windows = "";
    let take = "";
    let callEnd = "";
    let entries = 0;
    for (let c = 0; c < calls.length; c++) {
      for (const entry of calls[c]!) {
        let k = index.get(entry.name);
        if (k === undefined) {
          k = names.push(entry.name);
          index.set(entry.name, k);
        }
        const sep = entries++ === 0 ? "" : ",";
        counter += `${sep}${k}`;
        limits += `${sep}${entry.limit}`;
        windows += `${sep}${entry.windowMs}`;
        take += entry.take ? `${sep}t` : `${sep}f`;
      }
      callEnd += `${c === 0 ? "" : ","}${entries}`;
    }
    let out: number[];
    try {
      const { rows } = await this.#pool.query<{ out: number[] }>({
        name: "aa_take_counters",
        text: "SELECT aa_take_counters($1, $2, $3::int[], $4::float8[], $5::int8[], $6::bool[], $7::int[]) AS out",
        values: [org, names, `{${counter}}`, `{${limits}}`, `{${windows}}`, `{${take}}`, `{${callEnd}}`],
      });
      out = rows[0]!.out;
    } catch (error) {
      throw storeFailure("STORE_WRITE_FAILED", "Counting the call against shared limits", error);
    }
    const n = calls.length;
    if (out.length !== n + 2 * names.length) {
      throw storeFailure(
        "STORE_WRITE_FAILED",
        "Counting the call against shared limits",
        new Error(`aa_take_counters returned ${out.length} values for ${n} calls`),
      );
    }
    const states = names.map((_, k) => {
      const startedAt = out[n + 2 * k]!;
      return { startedAt: startedAt < 0 ? undefined : startedAt, used: out[n + 2 * k + 1]! };
    });
    return calls.map((entries, c) => ({
      blocked: out[c]! - 1,
      counters: entries.map((entry) => states[index.get(entry.name)! - 1]!),
    }));
  }

  async giveCounters(org: string, counts: { name: string; startedAt: number }[]): Promise<void> {
    if (counts.length === 0) return;
    await this.#pool.query({
      name: "aa_give_counters",
      text: "SELECT aa_give_counters($1, $2, $3)",
      values: [org, counts.map((c) => c.name), counts.map((c) => c.startedAt)],
    });
  }

  async sweepCounters(org: string, maxWindowMs: number, limit: number): Promise<number> {
    const { rows } = await this.#pool.query<{ swept: number }>({
      name: "aa_sweep_counters",
      text: "SELECT aa_sweep_counters($1, $2, $3) AS swept",
      values: [org, maxWindowMs, limit],
    });
    return rows[0]!.swept;
  }

  async close(): Promise<void> {
    for (const watch of [...this.#watches]) watch.stop();
    await this.#announcer.drain();
    this.#announcer.close();
    await this.#pool.end();
  }
}
