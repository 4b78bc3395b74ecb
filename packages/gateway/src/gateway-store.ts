/**
 * What the gateway keeps beside the engine's audit store, in the same database: API keys (hashed)
 * and each org's policy once an admin replaced it. Tables are the gateway's own (`aa_gateway_*`),
 * created by the gateway, so the engine's schema and migrations stay the engine's business
 * (docs/decisions.md). SQLite via `node:sqlite`, PostgreSQL via `pg` (loaded only for a
 * `postgres://` database), or memory for tests.
 */
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { DatabaseSync, StatementSync } from "node:sqlite";
import type { ActionResult } from "@aa/engine";
import type { PolicyDocument } from "@aa/policy";
import { GatewayError } from "./errors.js";

/** Who a key speaks for. `agent` keys act as one agent; `operator` and `admin` keys act for an org. */
export type KeyKind = "agent" | "operator" | "admin";

/** One API key as stored: never the secret, only its SHA-256. */
export interface ApiKeyRecord {
  id: string;
  kind: KeyKind;
  orgId: string;
  agentId?: string;
  name?: string;
  /** Hex SHA-256 of the key's secret part. */
  secretHash: string;
  createdAt: string;
  revokedAt?: string;
}

/** An org's policy as replaced through `PUT /v1/policies`. */
export interface StoredPolicy {
  orgId: string;
  policy: PolicyDocument;
  policyHash: string;
  updatedAt: string;
  updatedBy: string;
}

/**
 * An org's policy row as read back: nothing in it is trusted (the row may have been edited in the
 * database), so `policy` is the parsed text, unvalidated (`null` when the text is not JSON).
 */
export interface ReadPolicy extends Omit<StoredPolicy, "policy"> {
  policy: unknown;
  /** The stored text, verbatim. */
  text: string;
}

function parseStoredPolicy(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** A release answered once for an idempotency key: a retry with the same key gets it again. */
export interface StoredRelease {
  orgId: string;
  idempotencyKey: string;
  approvalId: string;
  /** The agent key that released it. */
  keyId: string;
  result: ActionResult;
}

/** Where a database string points: `:memory:`, `sqlite:<file>` (or a bare file path), `postgres://`. */
export type DatabaseLocation =
  | { kind: "memory" }
  | { kind: "sqlite"; path: string }
  | { kind: "postgres"; url: string };

export function parseDatabase(database: string): DatabaseLocation {
  if (typeof database !== "string" || database.trim() === "") {
    throw new GatewayError(
      "INVALID_OPTIONS",
      400,
      "`database` must be sqlite:<file>, a postgres:// URL, or :memory: (tests)",
      { option: "database" },
    );
  }
  if (database === ":memory:") return { kind: "memory" };
  if (/^postgres(ql)?:\/\//i.test(database)) return { kind: "postgres", url: database };
  const path = database.startsWith("sqlite:") ? database.slice("sqlite:".length) : database;
  if (path === "" || path === ":memory:") {
    throw new GatewayError(
      "INVALID_OPTIONS",
      400,
      "`database` sqlite: needs a file path, e.g. sqlite:.aa/assembly.db (use :memory: for a throwaway store)",
      { option: "database" },
    );
  }
  return { kind: "sqlite", path: resolve(path) };
}

/** The `store` option `openEngine` takes for the same database. */
export function engineStoreFor(location: DatabaseLocation): string {
  return location.kind === "memory" ? ":memory:" : location.kind === "sqlite" ? location.path : location.url;
}

/** Persistence for keys and per-org policies. Every method may be called concurrently. */
export interface GatewayStore {
  readonly kind: "memory" | "sqlite" | "postgres";
  insertKey(record: ApiKeyRecord): Promise<void>;
  getKey(id: string): Promise<ApiKeyRecord | undefined>;
  listKeys(orgId?: string): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked (idempotent: the first revocation time stays); undefined when unknown. */
  revokeKey(id: string, at: string): Promise<ApiKeyRecord | undefined>;
  getPolicy(orgId: string): Promise<ReadPolicy | undefined>;
  putPolicy(policy: StoredPolicy): Promise<void>;
  getRelease(orgId: string, idempotencyKey: string): Promise<StoredRelease | undefined>;
  /** Keeps the first release stored for the key (a concurrent second one is ignored). */
  putRelease(release: StoredRelease): Promise<void>;
  /** Throws when the database cannot answer (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}

export async function openGatewayStore(location: DatabaseLocation): Promise<GatewayStore> {
  if (location.kind === "memory") return new MemoryGatewayStore();
  if (location.kind === "sqlite") return SqliteGatewayStore.open(location.path);
  return PostgresGatewayStore.open(location.url);
}

class MemoryGatewayStore implements GatewayStore {
  readonly kind = "memory" as const;
  readonly #keys = new Map<string, ApiKeyRecord>();
  readonly #policies = new Map<string, StoredPolicy>();

  async insertKey(record: ApiKeyRecord): Promise<void> {
    this.#keys.set(record.id, { ...record });
  }
  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#keys.get(id);
    return row ? { ...row } : undefined;
  }
  async listKeys(orgId?: string): Promise<ApiKeyRecord[]> {
    return [...this.#keys.values()]
      .filter((k) => orgId === undefined || k.orgId === orgId)
      .map((k) => ({ ...k }));
  }
  async revokeKey(id: string, at: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#keys.get(id);
    if (!row) return undefined;
    row.revokedAt ??= at;
    return { ...row };
  }
  async getPolicy(orgId: string): Promise<ReadPolicy | undefined> {
    const stored = this.#policies.get(orgId);
    return stored && { ...stored, text: JSON.stringify(stored.policy) };
  }
  async putPolicy(policy: StoredPolicy): Promise<void> {
    this.#policies.set(policy.orgId, policy);
  }
  readonly #releases = new Map<string, StoredRelease>();
  async getRelease(orgId: string, idempotencyKey: string): Promise<StoredRelease | undefined> {
    return this.#releases.get(`${orgId}\u0000${idempotencyKey}`);
  }
  async putRelease(release: StoredRelease): Promise<void> {
    const key = `${release.orgId}\u0000${release.idempotencyKey}`;
    if (!this.#releases.has(key)) this.#releases.set(key, release);
  }
  async ping(): Promise<void> {}
  async close(): Promise<void> {}
}

interface KeyRow {
  id: string;
  kind: string;
  org_id: string;
  agent_id: string | null;
  name: string | null;
  secret_hash: string;
  created_at: string;
  revoked_at: string | null;
}

function fromRow(row: KeyRow): ApiKeyRecord {
  const out: ApiKeyRecord = {
    id: row.id,
    kind: row.kind as KeyKind,
    orgId: row.org_id,
    secretHash: row.secret_hash,
    createdAt: row.created_at,
  };
  if (row.agent_id !== null) out.agentId = row.agent_id;
  if (row.name !== null) out.name = row.name;
  if (row.revoked_at !== null) out.revokedAt = row.revoked_at;
  return out;
}

/** Version 1 of the gateway's tables; later versions are appended, never edited. */
const SQLITE_SCHEMA = [
  `CREATE TABLE IF NOT EXISTS aa_gateway_api_keys (
     id TEXT NOT NULL PRIMARY KEY,
     kind TEXT NOT NULL,
     org_id TEXT NOT NULL,
     agent_id TEXT,
     name TEXT,
     secret_hash TEXT NOT NULL,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE INDEX IF NOT EXISTS aa_gateway_api_keys_org ON aa_gateway_api_keys (org_id, created_at);
   CREATE TABLE IF NOT EXISTS aa_gateway_policies (
     org_id TEXT NOT NULL PRIMARY KEY,
     policy TEXT NOT NULL,
     policy_hash TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     updated_by TEXT NOT NULL
   );`,
  // Version 2: release answers by idempotency key (a retried release gets the first answer).
  `CREATE TABLE IF NOT EXISTS aa_gateway_releases (
     org_id TEXT NOT NULL,
     idempotency_key TEXT NOT NULL,
     approval_id TEXT NOT NULL,
     key_id TEXT NOT NULL,
     result TEXT NOT NULL,
     PRIMARY KEY (org_id, idempotency_key)
   );`,
];

/** Loads `node:sqlite` without Node 22's one ExperimentalWarning for it (every other warning passes). */
async function loadSqlite(): Promise<typeof import("node:sqlite")> {
  const original = process.emitWarning;
  const filtered = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    const text = warning instanceof Error ? warning.message : String(warning);
    if (/^SQLite is an experimental feature/.test(text)) return;
    return (original as (...args: unknown[]) => void).call(process, warning, ...rest);
  };
  process.emitWarning = filtered as typeof process.emitWarning;
  try {
    return await import("node:sqlite");
  } finally {
    if (process.emitWarning === (filtered as typeof process.emitWarning)) process.emitWarning = original;
  }
}

class SqliteGatewayStore implements GatewayStore {
  readonly kind = "sqlite" as const;
  readonly #db: DatabaseSync;
  readonly #s: Record<string, StatementSync>;

  private constructor(db: DatabaseSync) {
    this.#db = db;
    this.#s = {
      insertKey: db.prepare(
        `INSERT INTO aa_gateway_api_keys (id, kind, org_id, agent_id, name, secret_hash, created_at, revoked_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
      ),
      getKey: db.prepare("SELECT * FROM aa_gateway_api_keys WHERE id = ?"),
      listKeys: db.prepare("SELECT * FROM aa_gateway_api_keys ORDER BY rowid"),
      listOrgKeys: db.prepare("SELECT * FROM aa_gateway_api_keys WHERE org_id = ? ORDER BY rowid"),
      revokeKey: db.prepare(
        "UPDATE aa_gateway_api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?",
      ),
      getPolicy: db.prepare("SELECT * FROM aa_gateway_policies WHERE org_id = ?"),
      putPolicy: db.prepare(
        `INSERT INTO aa_gateway_policies (org_id, policy, policy_hash, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (org_id) DO UPDATE SET policy = excluded.policy, policy_hash = excluded.policy_hash,
           updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      ),
      getRelease: db.prepare("SELECT * FROM aa_gateway_releases WHERE org_id = ? AND idempotency_key = ?"),
      putRelease: db.prepare(
        `INSERT INTO aa_gateway_releases (org_id, idempotency_key, approval_id, key_id, result) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (org_id, idempotency_key) DO NOTHING`,
      ),
      ping: db.prepare("SELECT 1"),
    };
  }

  static async open(path: string): Promise<SqliteGatewayStore> {
    const { DatabaseSync } = await loadSqlite();
    let db: DatabaseSync;
    try {
      mkdirSync(dirname(path), { recursive: true });
      db = new DatabaseSync(path);
      db.exec("PRAGMA busy_timeout = 5000");
      db.exec("PRAGMA journal_mode = WAL");
      db.exec("PRAGMA synchronous = NORMAL");
      db.exec("BEGIN IMMEDIATE");
      try {
        for (const statement of SQLITE_SCHEMA) db.exec(statement);
        db.exec("COMMIT");
      } catch (error) {
        db.exec("ROLLBACK");
        throw error;
      }
    } catch (cause) {
      throw new GatewayError(
        "GATE_UNAVAILABLE",
        503,
        `Cannot open the gateway's tables in the SQLite database ${path}: ${(cause as Error).message}`,
        { path },
        { cause },
      );
    }
    return new SqliteGatewayStore(db);
  }

  async insertKey(r: ApiKeyRecord): Promise<void> {
    this.#s.insertKey!.run(
      r.id,
      r.kind,
      r.orgId,
      r.agentId ?? null,
      r.name ?? null,
      r.secretHash,
      r.createdAt,
    );
  }
  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const row = this.#s.getKey!.get(id) as KeyRow | undefined;
    return row ? fromRow(row) : undefined;
  }
  async listKeys(orgId?: string): Promise<ApiKeyRecord[]> {
    const rows = (
      orgId === undefined ? this.#s.listKeys!.all() : this.#s.listOrgKeys!.all(orgId)
    ) as unknown[];
    return (rows as KeyRow[]).map(fromRow);
  }
  async revokeKey(id: string, at: string): Promise<ApiKeyRecord | undefined> {
    this.#s.revokeKey!.run(at, id);
    return this.getKey(id);
  }
  async getPolicy(orgId: string): Promise<ReadPolicy | undefined> {
    const row = this.#s.getPolicy!.get(orgId) as
      | { org_id: string; policy: string; policy_hash: string; updated_at: string; updated_by: string }
      | undefined;
    return row
      ? {
          orgId: row.org_id,
          policy: parseStoredPolicy(row.policy),
          text: row.policy,
          policyHash: row.policy_hash,
          updatedAt: row.updated_at,
          updatedBy: row.updated_by,
        }
      : undefined;
  }
  async putPolicy(p: StoredPolicy): Promise<void> {
    this.#s.putPolicy!.run(p.orgId, JSON.stringify(p.policy), p.policyHash, p.updatedAt, p.updatedBy);
  }
  async getRelease(orgId: string, idempotencyKey: string): Promise<StoredRelease | undefined> {
    const row = this.#s.getRelease!.get(orgId, idempotencyKey) as ReleaseRow | undefined;
    return row ? fromReleaseRow(row) : undefined;
  }
  async putRelease(r: StoredRelease): Promise<void> {
    this.#s.putRelease!.run(r.orgId, r.idempotencyKey, r.approvalId, r.keyId, JSON.stringify(r.result));
  }
  async ping(): Promise<void> {
    this.#s.ping!.get();
  }
  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}

const POSTGRES_SCHEMA = `
  CREATE TABLE IF NOT EXISTS aa_gateway_api_keys (
    position BIGSERIAL NOT NULL,
    id TEXT NOT NULL PRIMARY KEY,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    agent_id TEXT,
    name TEXT,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT
  );
  CREATE INDEX IF NOT EXISTS aa_gateway_api_keys_org ON aa_gateway_api_keys (org_id, position);
  CREATE TABLE IF NOT EXISTS aa_gateway_policies (
    org_id TEXT NOT NULL PRIMARY KEY,
    policy TEXT NOT NULL,
    policy_hash TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    updated_by TEXT NOT NULL
  );`;

/** Version 2 (appended): release answers by idempotency key. */
const POSTGRES_SCHEMA_V2 = `
  CREATE TABLE IF NOT EXISTS aa_gateway_releases (
    org_id TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    approval_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    result TEXT NOT NULL,
    PRIMARY KEY (org_id, idempotency_key)
  );`;

interface ReleaseRow {
  org_id: string;
  idempotency_key: string;
  approval_id: string;
  key_id: string;
  result: string;
}

function fromReleaseRow(row: ReleaseRow): StoredRelease {
  return {
    orgId: row.org_id,
    idempotencyKey: row.idempotency_key,
    approvalId: row.approval_id,
    keyId: row.key_id,
    result: JSON.parse(row.result) as ActionResult,
  };
}

/** Same advisory-lock space for every gateway: replicas starting together create the tables once. */
const SCHEMA_LOCK = 7_391_001;

type PgPool = import("pg").Pool;

class PostgresGatewayStore implements GatewayStore {
  readonly kind = "postgres" as const;
  readonly #pool: PgPool;

  private constructor(pool: PgPool) {
    this.#pool = pool;
  }

  static async open(url: string): Promise<PostgresGatewayStore> {
    let pg: typeof import("pg");
    try {
      pg = (await import("pg")).default as unknown as typeof import("pg");
    } catch (cause) {
      throw new GatewayError(
        "GATE_UNAVAILABLE",
        503,
        "A postgres:// database needs the `pg` package: install it next to @aa/gateway (npm install pg)",
        {},
        { cause },
      );
    }
    const parsed = new URL(url);
    const schema = parsed.searchParams.get("schema");
    // Parameters the engine's store reads; the gateway's own pool ignores them.
    parsed.searchParams.delete("schema");
    parsed.searchParams.delete("early_lock_release");
    if (schema !== null && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new GatewayError(
        "INVALID_OPTIONS",
        400,
        "the `schema` URL parameter must be a lower-case SQL identifier",
        { option: "database" },
      );
    }
    const pool = new pg.Pool({
      connectionString: parsed.toString(),
      max: 2,
      ...(schema ? { options: `-c search_path=${schema}` } : {}),
    });
    pool.on("error", () => {
      // An idle client died (server restart); the pool replaces it on next use.
    });
    try {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        await client.query("SELECT pg_advisory_xact_lock($1)", [SCHEMA_LOCK]);
        if (schema) await client.query(`CREATE SCHEMA IF NOT EXISTS ${schema}`);
        await client.query(POSTGRES_SCHEMA);
        await client.query(POSTGRES_SCHEMA_V2);
        await client.query("COMMIT");
      } catch (error) {
        await client.query("ROLLBACK").catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    } catch (cause) {
      await pool.end().catch(() => undefined);
      throw new GatewayError(
        "GATE_UNAVAILABLE",
        503,
        `Cannot open the gateway's tables in PostgreSQL at ${parsed.host}: ${(cause as Error).message}`,
        {},
        { cause },
      );
    }
    return new PostgresGatewayStore(pool);
  }

  async insertKey(r: ApiKeyRecord): Promise<void> {
    await this.#pool.query(
      `INSERT INTO aa_gateway_api_keys (id, kind, org_id, agent_id, name, secret_hash, created_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [r.id, r.kind, r.orgId, r.agentId ?? null, r.name ?? null, r.secretHash, r.createdAt],
    );
  }
  async getKey(id: string): Promise<ApiKeyRecord | undefined> {
    const { rows } = await this.#pool.query<KeyRow>("SELECT * FROM aa_gateway_api_keys WHERE id = $1", [id]);
    return rows[0] ? fromRow(rows[0]) : undefined;
  }
  async listKeys(orgId?: string): Promise<ApiKeyRecord[]> {
    const { rows } =
      orgId === undefined
        ? await this.#pool.query<KeyRow>("SELECT * FROM aa_gateway_api_keys ORDER BY position")
        : await this.#pool.query<KeyRow>(
            "SELECT * FROM aa_gateway_api_keys WHERE org_id = $1 ORDER BY position",
            [orgId],
          );
    return rows.map(fromRow);
  }
  async revokeKey(id: string, at: string): Promise<ApiKeyRecord | undefined> {
    await this.#pool.query(
      "UPDATE aa_gateway_api_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE id = $2",
      [at, id],
    );
    return this.getKey(id);
  }
  async getPolicy(orgId: string): Promise<ReadPolicy | undefined> {
    const { rows } = await this.#pool.query<{
      org_id: string;
      policy: string;
      policy_hash: string;
      updated_at: string;
      updated_by: string;
    }>("SELECT * FROM aa_gateway_policies WHERE org_id = $1", [orgId]);
    const row = rows[0];
    return row
      ? {
          orgId: row.org_id,
          policy: parseStoredPolicy(row.policy),
          text: row.policy,
          policyHash: row.policy_hash,
          updatedAt: row.updated_at,
          updatedBy: row.updated_by,
        }
      : undefined;
  }
  async putPolicy(p: StoredPolicy): Promise<void> {
    await this.#pool.query(
      `INSERT INTO aa_gateway_policies (org_id, policy, policy_hash, updated_at, updated_by) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (org_id) DO UPDATE SET policy = excluded.policy, policy_hash = excluded.policy_hash,
         updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
      [p.orgId, JSON.stringify(p.policy), p.policyHash, p.updatedAt, p.updatedBy],
    );
  }
  async getRelease(orgId: string, idempotencyKey: string): Promise<StoredRelease | undefined> {
    const { rows } = await this.#pool.query<ReleaseRow>(
      "SELECT * FROM aa_gateway_releases WHERE org_id = $1 AND idempotency_key = $2",
      [orgId, idempotencyKey],
    );
    return rows[0] ? fromReleaseRow(rows[0]) : undefined;
  }
  async putRelease(r: StoredRelease): Promise<void> {
    await this.#pool.query(
      `INSERT INTO aa_gateway_releases (org_id, idempotency_key, approval_id, key_id, result) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (org_id, idempotency_key) DO NOTHING`,
      [r.orgId, r.idempotencyKey, r.approvalId, r.keyId, JSON.stringify(r.result)],
    );
  }
  async ping(): Promise<void> {
    await this.#pool.query("SELECT 1");
  }
  async close(): Promise<void> {
    await this.#pool.end();
  }
}
