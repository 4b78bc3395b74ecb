/**
 * The delegation registry as this process sees it: the org's live delegations (not expired, or
 * expired without an audited expiry yet), re-read from the store on a timer off the decision path
 * so a revocation written by another process takes effect here within one refresh interval.
 *
 * The decision path is synchronous once a token has been seen: a verified token is cached by its
 * text (its signature is checked once per process), and the chain walk (revoked? expired?) reads
 * only the in-memory rows, memoised until the next refresh or local write.
 */
import type { ConditionResult } from "@aa/policy";
import type { Jwks } from "../crypto/keyring.js";
import type { AuditStore, DelegationRow } from "../store/types.js";
import { allows } from "./capabilities.js";
import { type VerifiedToken, verifyDelegationToken } from "./token.js";

/** Delegation chains deeper than this are refused (and a corrupted registry cannot loop). */
export const MAX_DELEGATION_DEPTH = 16;
const TOKEN_CACHE_LIMIT = 10_000;
const CHAIN_CACHE_LIMIT = 10_000;
const ACTION_MEMO_LIMIT = 256;

export type DelegationDenialReason =
  | "NOT_DELEGATED"
  | "DELEGATION_EXPIRED"
  | "DELEGATION_REVOKED"
  | "DELEGATION_INVALID";

/** Why a delegated call (or the use of a token) is refused, with what the audit record needs. */
export interface DelegationDenial {
  reason: DelegationDenialReason;
  message: string;
  conditions: ConditionResult[];
  /** The agent the call is attributed to (the token's subject when the token is authentic). */
  agentId?: string;
  /** Agent ids root first, when known. */
  chain?: string[];
}

/** A valid delegation, as a call presenting its token acts under it. */
export interface DelegationContext {
  delegationId: string;
  /** The child agent the call is attributed to. */
  agentId: string;
  /** Agent ids from the root agent down to `agentId`. */
  chain: string[];
  /** Registry rows from the root's delegation down to this one. */
  rows: DelegationRow[];
  /** The earliest expiry along the chain. */
  expiresAtMs: number;
  /** actionType → denial (or null when allowed); bounded. */
  readonly memo: Map<string, DelegationDenial | null>;
}

export type Resolution = { ok: true; context: DelegationContext } | { ok: false; denial: DelegationDenial };

const POLICY = "delegation";

export function invalidToken(problem: string, agentId?: string, chain?: string[]): DelegationDenial {
  return {
    reason: "DELEGATION_INVALID",
    message: `The delegation token was rejected: ${problem}`,
    conditions: [
      {
        policy: POLICY,
        field: "delegation.token",
        operator: "eq",
        expected: "valid",
        actual: problem,
        result: false,
      },
    ],
    ...(agentId === undefined ? {} : { agentId }),
    ...(chain === undefined ? {} : { chain }),
  };
}

export class DelegationRegistry {
  readonly #store: AuditStore;
  readonly #org: string;
  readonly #jwks: () => Jwks;
  #rows = new Map<string, DelegationRow>();
  readonly #tokens = new Map<string, VerifiedToken>();
  /** delegation id → its resolution at `#version`. */
  readonly #chains = new Map<string, { version: number; resolution: Resolution }>();
  #version = 0;
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  #localWrites = 0;

  constructor(store: AuditStore, org: string, jwks: () => Jwks) {
    this.#store = store;
    this.#org = org;
    this.#jwks = jwks;
  }

  /**
   * Loads the live rows, then re-reads them every `intervalMs` while any are known, calling
   * `onTick` after each read.
   */
  async start(intervalMs: number, onTick: () => void): Promise<void> {
    await this.refresh();
    this.#timer = setInterval(() => {
      // Nothing known, nothing to keep fresh: a token seen later is read from the store then, so
      // an engine (e.g. one of a gateway's many orgs) that meets no delegation reads nothing.
      if (this.#rows.size === 0) return;
      void this.safelyRefresh().then(onTick);
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-reads the live delegations from the store now. */
  refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const writesBefore = this.#localWrites;
        const rows = await this.#store.listDelegations(this.#org, { liveAt: new Date().toISOString() });
        if (writesBefore !== this.#localWrites) return; // stale: the next read includes our write
        const next = new Map<string, DelegationRow>();
        for (const row of rows) next.set(row.id, row);
        if (!sameRows(this.#rows, next)) {
          this.#rows = next;
          this.#version++;
        }
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** A failed periodic read keeps the last known rows; the next tick retries. */
  async safelyRefresh(): Promise<void> {
    try {
      await this.refresh();
    } catch {
      // The store is unreachable: keep what we know (decisions fail on their own append).
    }
  }

  /** Applies a row this process wrote (created, revoked, expiry recorded) at once. */
  apply(row: DelegationRow): void {
    this.#localWrites++;
    this.#rows.set(row.id, row);
    this.#version++;
  }

  /** The row from memory, else from the store (cold path: created by another process since the last read). */
  async row(id: string): Promise<DelegationRow | undefined> {
    const known = this.#rows.get(id);
    if (known) return known;
    const row = await this.#store.getDelegation(this.#org, id);
    if (row) {
      this.#rows.set(row.id, row);
      this.#version++;
    }
    return row;
  }

  /** Live rows whose expiry has passed and is not audited yet. */
  dueForExpiry(nowMs: number): DelegationRow[] {
    const out: DelegationRow[] = [];
    for (const row of this.#rows.values()) {
      if (row.expiredAt === null && row.revokedAt === null && Date.parse(row.expiresAt) <= nowMs)
        out.push(row);
    }
    return out;
  }

  /** Every row in memory (live ones). */
  rows(): DelegationRow[] {
    return [...this.#rows.values()];
  }

  /**
   * The hot path: resolves a token seen before against the in-memory rows without any I/O.
   * Undefined when the slow path ({@link resolve}) is needed.
   */
  resolveCached(token: string, nowMs: number): Resolution | undefined {
    const verified = this.#tokens.get(token);
    if (verified === undefined) return undefined;
    const cached = this.#chains.get(verified.delegationId);
    let resolution: Resolution;
    if (cached !== undefined && cached.version === this.#version) resolution = cached.resolution;
    else {
      const walked = this.#walk(verified, nowMs);
      if (walked === undefined) return undefined;
      resolution = walked;
      this.#remember(verified.delegationId, resolution);
    }
    if (resolution.ok && (nowMs >= resolution.context.expiresAtMs || nowMs >= verified.expiresAtMs)) {
      return expiredDenial(resolution.context, nowMs);
    }
    return resolution;
  }

  /** Verifies the token (signature once per process), loads missing rows, and resolves it. */
  async resolve(token: string, nowMs: number): Promise<Resolution> {
    const cached = this.resolveCached(token, nowMs);
    if (cached) return cached;
    let verified = this.#tokens.get(token);
    if (verified === undefined) {
      const check = await verifyDelegationToken(token, this.#jwks(), this.#org);
      if (!check.ok) return { ok: false, denial: invalidToken(check.problem) };
      verified = check.token;
    }
    await this.#load(verified.delegationId);
    const resolution = this.#walk(verified, nowMs) ?? {
      ok: false as const,
      denial: invalidToken(
        `delegation ${verified.delegationId} (or one of its parents) is not in this organisation's registry`,
        verified.agentId,
        verified.chain,
      ),
    };
    // The signature is good: never check it again in this process (expiry is checked on each use).
    if (this.#tokens.size >= TOKEN_CACHE_LIMIT) this.#tokens.clear();
    this.#tokens.set(token, verified);
    if (resolution.ok) this.#remember(verified.delegationId, resolution);
    if (resolution.ok && (verified.expired || nowMs >= resolution.context.expiresAtMs)) {
      return expiredDenial(resolution.context, nowMs);
    }
    return resolution;
  }

  #remember(delegationId: string, resolution: Resolution): void {
    if (this.#chains.size >= CHAIN_CACHE_LIMIT) this.#chains.clear();
    this.#chains.set(delegationId, { version: this.#version, resolution });
  }

  /**
   * The state of a delegation by id, from the registry alone (no token): used where the token was
   * checked earlier, e.g. when an approved call of a delegated agent is released.
   */
  async resolveId(delegationId: string, nowMs: number): Promise<Resolution> {
    await this.#load(delegationId);
    const own = this.#rows.get(delegationId);
    const walked = own
      ? this.#walk({ delegationId, agentId: own.childAgentId, chain: undefined }, nowMs)
      : undefined;
    return walked ?? { ok: false, denial: invalidToken(`delegation ${delegationId} is not in the registry`) };
  }

  /** Loads the rows of a chain that are not in memory (expired ones are not kept there). */
  async #load(delegationId: string): Promise<void> {
    let id: string | null = delegationId;
    for (let depth = 0; id !== null && depth <= MAX_DELEGATION_DEPTH; depth++) {
      const row: DelegationRow | undefined = await this.row(id);
      if (!row) break;
      id = row.parentDelegationId;
    }
  }

  /** Walks the chain in memory; undefined when a row is missing (load it, then walk again). */
  #walk(
    token: { delegationId: string; agentId: string; chain: string[] | undefined },
    nowMs: number,
  ): Resolution | undefined {
    const rows: DelegationRow[] = [];
    let id: string | null = token.delegationId;
    while (id !== null) {
      const row = this.#rows.get(id);
      if (!row) return undefined;
      rows.unshift(row);
      if (rows.length > MAX_DELEGATION_DEPTH) {
        return {
          ok: false,
          denial: invalidToken("the delegation chain is deeper than allowed", token.agentId),
        };
      }
      id = row.parentDelegationId;
    }
    const chain = [rows[0]!.parentAgentId, ...rows.map((row) => row.childAgentId)];
    const own = rows.at(-1)!;
    if (
      own.childAgentId !== token.agentId ||
      (token.chain !== undefined && chain.join("\u0000") !== token.chain.join("\u0000"))
    ) {
      return { ok: false, denial: invalidToken("the token's subject or chain differs from the registry's") };
    }
    const revoked = rows.find((row) => row.revokedAt !== null);
    if (revoked) {
      return {
        ok: false,
        denial: {
          reason: "DELEGATION_REVOKED",
          message: `The delegation of ${own.childAgentId} was revoked${revoked === own ? "" : ` with ${revoked.childAgentId}'s`} by ${revoked.revokedBy} at ${revoked.revokedAt}`,
          conditions: [
            {
              policy: POLICY,
              field: `delegation[${revoked.childAgentId}].revokedAt`,
              operator: "exists",
              expected: false,
              actual: revoked.revokedAt,
              result: false,
            },
          ],
          agentId: own.childAgentId,
          chain,
        },
      };
    }
    let expiresAtMs = Number.POSITIVE_INFINITY;
    for (const row of rows) expiresAtMs = Math.min(expiresAtMs, Date.parse(row.expiresAt));
    const context: DelegationContext = {
      delegationId: own.id,
      agentId: own.childAgentId,
      chain,
      rows,
      expiresAtMs,
      memo: new Map(),
    };
    if (nowMs >= expiresAtMs) return expiredDenial(context, nowMs);
    return { ok: true, context };
  }
}

function expiredDenial(context: DelegationContext, nowMs: number): Resolution {
  const first =
    context.rows.find((row) => Date.parse(row.expiresAt) === context.expiresAtMs) ?? context.rows.at(-1)!;
  return {
    ok: false,
    denial: {
      reason: "DELEGATION_EXPIRED",
      message: `The delegation of ${context.agentId} expired at ${first.expiresAt}${first.childAgentId === context.agentId ? "" : ` (with ${first.childAgentId}'s)`}`,
      conditions: [
        {
          policy: POLICY,
          field: `delegation[${first.childAgentId}].expiresAt`,
          operator: "gt",
          expected: new Date(nowMs).toISOString(),
          actual: first.expiresAt,
          result: false,
        },
      ],
      agentId: context.agentId,
      chain: context.chain,
    },
  };
}

/**
 * The capability check of one call: the action type must be within the capabilities of every
 * delegation along the chain (root's first). Memoised per action type.
 */
export function checkCapabilities(
  context: DelegationContext,
  actionType: string,
): DelegationDenial | undefined {
  const memo = context.memo.get(actionType);
  if (memo !== undefined) return memo ?? undefined;
  const conditions: ConditionResult[] = [];
  let failed: DelegationRow | undefined;
  for (const row of context.rows) {
    const ok = allows(row.capabilities, actionType);
    conditions.push({
      policy: POLICY,
      field: `delegation[${row.childAgentId}].capabilities`,
      operator: "matches",
      expected: row.capabilities,
      actual: actionType,
      result: ok,
    });
    if (!ok) {
      failed = row;
      break;
    }
  }
  const denial: DelegationDenial | null = failed
    ? {
        reason: "NOT_DELEGATED",
        message: `${context.agentId} was not delegated ${actionType}: it is outside ${failed.childAgentId}'s capabilities [${failed.capabilities.join(", ")}]`,
        conditions,
        agentId: context.agentId,
        chain: context.chain,
      }
    : null;
  if (context.memo.size >= ACTION_MEMO_LIMIT) context.memo.clear();
  context.memo.set(actionType, denial);
  return denial ?? undefined;
}

function sameRows(a: Map<string, DelegationRow>, b: Map<string, DelegationRow>): boolean {
  if (a.size !== b.size) return false;
  for (const [id, row] of b) {
    const other = a.get(id);
    if (
      !other ||
      other.revokedAt !== row.revokedAt ||
      other.expiredAt !== row.expiredAt ||
      other.expiresAt !== row.expiresAt
    ) {
      return false;
    }
  }
  return true;
}
