/**
 * Delegation operations over the registry: create, revoke (cascading), list, verify, and the
 * audited expiry of delegations whose time is up. The engine owns the chain writer; this module
 * builds the records and the store effects that commit with them.
 */
import { randomBytes } from "node:crypto";
import { encodeRecord, type RecordFields, type RecordKind } from "../chain/record.js";
import type { Keyring } from "../crypto/keyring.js";
import { EngineError, invalid } from "../errors.js";
import { delegationNotFound } from "../store/effects.js";
import type { AppendOutcome, AuditStore, DelegationRow, PendingAppend, StoreEffect } from "../store/types.js";
import type {
  DelegateOptions,
  Delegation,
  DelegationFilter,
  DelegationGrant,
  DelegationParent,
  DelegationState,
} from "../types.js";
import { ROOT_CAPABILITIES, uncovered, validateCapabilities } from "./capabilities.js";
import {
  type DelegationContext,
  type DelegationDenial,
  DelegationRegistry,
  MAX_DELEGATION_DEPTH,
} from "./registry.js";
import { signDelegationToken } from "./token.js";

/** The longest a delegation may live (spec: ttl <= 86 400 s). */
export const MAX_DELEGATION_TTL_S = 86_400;
const DEFAULT_TTL_S = 3600;
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

export interface DelegationDeps {
  store: AuditStore;
  org: string;
  keyring: () => Keyring;
  append: (item: PendingAppend) => Promise<AppendOutcome>;
  /** A system record's fields (as the engine builds them for controls and policy changes). */
  systemFields: (
    kind: RecordKind,
    agent: string,
    actionType: string,
    extra: Partial<RecordFields>,
  ) => RecordFields;
}

/** The EngineError a denial becomes where a token is used outside `decide` (delegate, verify, release). */
export function denialError(denial: DelegationDenial): EngineError {
  const status = denial.reason === "DELEGATION_REVOKED" || denial.reason === "NOT_DELEGATED" ? 403 : 401;
  const code = denial.reason === "NOT_DELEGATED" ? "CAPABILITY_ESCALATION" : denial.reason;
  return new EngineError(code, status, denial.message, {
    ...(denial.agentId === undefined ? {} : { agentId: denial.agentId }),
    ...(denial.chain === undefined ? {} : { chain: denial.chain }),
    conditions: denial.conditions,
  });
}

export class DelegationService {
  readonly registry: DelegationRegistry;
  readonly #deps: DelegationDeps;
  #expiring: Promise<void> | undefined;

  constructor(deps: DelegationDeps) {
    this.#deps = deps;
    this.registry = new DelegationRegistry(deps.store, deps.org, () => deps.keyring().jwks());
  }

  start(refreshMs: number): Promise<void> {
    return this.registry.start(refreshMs, () => void this.expireDue());
  }

  stop(): void {
    this.registry.stop();
  }

  async delegate(parent: DelegationParent, name: string, options: DelegateOptions): Promise<DelegationGrant> {
    if (
      parent === null ||
      typeof parent !== "object" ||
      typeof parent.agentId !== "string" ||
      parent.agentId === ""
    ) {
      throw invalid("delegate(parent, ...): parent.agentId must name the delegating agent", {
        field: "parent.agentId",
      });
    }
    if (typeof name !== "string" || !NAME_RE.test(name)) {
      throw invalid(
        "the delegation name must be 1-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit (it becomes <parent>/<name>)",
        { field: "name" },
      );
    }
    if (options === null || typeof options !== "object") {
      throw invalid("delegate(parent, name, options) needs options { capabilities, ttlSeconds? }", {
        field: "options",
      });
    }
    const capabilities = validateCapabilities(options.capabilities);
    const ttl = options.ttlSeconds;
    if (ttl !== undefined && (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > MAX_DELEGATION_TTL_S)) {
      throw new EngineError(
        "DELEGATION_TTL_EXCEEDED",
        400,
        `ttlSeconds must be an integer from 1 to ${MAX_DELEGATION_TTL_S} (24 h); got ${String(ttl)}`,
        { field: "ttlSeconds", max: MAX_DELEGATION_TTL_S },
      );
    }
    const nowMs = Date.now();
    let parentContext: DelegationContext | undefined;
    if (parent.delegationToken !== undefined) {
      const resolution = await this.registry.resolve(parent.delegationToken, nowMs);
      if (!resolution.ok) throw denialError(resolution.denial);
      parentContext = resolution.context;
      if (parentContext.agentId !== parent.agentId) {
        throw new EngineError(
          "DELEGATION_INVALID",
          401,
          `The delegation token belongs to ${parentContext.agentId}, not ${parent.agentId}`,
          { agentId: parent.agentId },
        );
      }
      if (parentContext.rows.length >= MAX_DELEGATION_DEPTH) {
        throw invalid(`delegation chains are at most ${MAX_DELEGATION_DEPTH} deep`, { field: "parent" });
      }
    } else {
      const held = this.registry
        .rows()
        .find(
          (row) =>
            row.childAgentId === parent.agentId &&
            row.revokedAt === null &&
            Date.parse(row.expiresAt) > nowMs,
        );
      if (held) {
        // A delegated agent delegating without its token would escape its own capabilities.
        throw new EngineError(
          "DELEGATION_INVALID",
          401,
          `${parent.agentId} acts under delegation ${held.id}; pass its delegationToken to delegate further`,
          { agentId: parent.agentId, delegationId: held.id },
        );
      }
    }
    const parentCapabilities = parentContext ? parentContext.rows.at(-1)!.capabilities : ROOT_CAPABILITIES;
    const wider = uncovered(capabilities, parentCapabilities);
    if (wider.length > 0) {
      throw new EngineError(
        "CAPABILITY_ESCALATION",
        403,
        `${parent.agentId} cannot delegate [${wider.join(", ")}]: not within its own capabilities [${parentCapabilities.join(", ")}]; a delegation can only narrow`,
        { requested: capabilities, notHeld: wider, held: [...parentCapabilities] },
      );
    }
    const parentExpiresAtMs = parentContext?.expiresAtMs ?? Number.POSITIVE_INFINITY;
    const ttlMs = ttl === undefined ? Math.min(DEFAULT_TTL_S * 1000, parentExpiresAtMs - nowMs) : ttl * 1000;
    const expiresAtMs = nowMs + ttlMs;
    if (expiresAtMs > parentExpiresAtMs) {
      throw new EngineError(
        "DELEGATION_TTL_EXCEEDED",
        400,
        `ttlSeconds ${ttl} would outlive the parent delegation, which expires at ${new Date(parentExpiresAtMs).toISOString()}; ask for at most ${Math.floor((parentExpiresAtMs - nowMs) / 1000)} s`,
        { field: "ttlSeconds", parentExpiresAt: new Date(parentExpiresAtMs).toISOString() },
      );
    }
    const childAgentId = `${parent.agentId}/${name}`;
    const chain = parentContext ? [...parentContext.chain, childAgentId] : [parent.agentId, childAgentId];
    const row: DelegationRow = {
      id: `dlg_${randomBytes(16).toString("base64url")}`,
      org: this.#deps.org,
      parentAgentId: parent.agentId,
      childAgentId,
      name,
      capabilities,
      issuedAt: new Date(nowMs).toISOString(),
      expiresAt: new Date(expiresAtMs).toISOString(),
      revokedAt: null,
      revokedBy: null,
      parentDelegationId: parentContext?.delegationId ?? null,
      expiredAt: null,
    };
    const token = signDelegationToken(
      {
        delegationId: row.id,
        agentId: childAgentId,
        org: this.#deps.org,
        chain,
        capabilities,
        issuedAtMs: nowMs,
        expiresAtMs,
      },
      this.#deps.keyring(),
    );
    await this.#write(
      "delegation.created",
      row,
      chain,
      { type: "delegation.insert", delegation: row },
      {
        reason: `${parent.agentId} delegated [${capabilities.join(", ")}] to ${childAgentId} until ${row.expiresAt}`,
      },
    );
    this.registry.apply(row);
    return { delegation: toDelegation(row, chain, "active"), token };
  }

  async verify(token: string): Promise<Delegation> {
    const resolution = await this.registry.resolve(token, Date.now());
    if (!resolution.ok) throw denialError(resolution.denial);
    const context = resolution.context;
    return toDelegation(context.rows.at(-1)!, context.chain, "active");
  }

  async revoke(
    delegationId: string,
    revokedBy: string,
    options: { agentId?: string } = {},
  ): Promise<Delegation> {
    if (typeof delegationId !== "string" || delegationId === "") {
      throw invalid("delegationId must be the id delegate() returned (dlg_...)", { field: "delegationId" });
    }
    if (typeof revokedBy !== "string" || revokedBy.trim() === "") {
      throw invalid("revokedBy must name who revokes (an operator or an agent)", { field: "revokedBy" });
    }
    const all = await this.#deps.store.listDelegations(this.#deps.org);
    const byId = new Map(all.map((row) => [row.id, row]));
    const target = byId.get(delegationId);
    if (!target) throw delegationNotFound(delegationId);
    const chain = chainOf(target, byId);
    if (options.agentId !== undefined && !chain.includes(options.agentId)) {
      throw new EngineError(
        "FORBIDDEN",
        403,
        `${options.agentId} may not revoke delegation ${delegationId}: only its agent (${target.childAgentId}), its ancestors or an operator may`,
        { delegationId, agentId: options.agentId },
      );
    }
    const nowMs = Date.now();
    if (target.revokedAt !== null) return toDelegation(target, chain, "revoked");
    // The target and every delegation below it, parents before children.
    const doomed: DelegationRow[] = [target];
    for (let i = 0; i < doomed.length; i++) {
      for (const row of all)
        if (row.parentDelegationId === doomed[i]!.id && row.revokedAt === null) doomed.push(row);
    }
    const at = new Date(nowMs).toISOString();
    await Promise.all(
      doomed.map(async (row) => {
        const reason =
          row === target
            ? `revoked by ${revokedBy}`
            : `revoked by ${revokedBy} with ${target.childAgentId} (${target.id})`;
        const written = await this.#write(
          "delegation.revoked",
          row,
          chainOf(row, byId),
          { type: "delegation.revoke", delegationId: row.id, revokedBy, at },
          { reason },
          false,
        );
        if (written) this.registry.apply({ ...row, revokedAt: at, revokedBy });
      }),
    );
    const after = (await this.#deps.store.getDelegation(this.#deps.org, delegationId)) ?? target;
    return toDelegation(after, chain, stateAt(after, undefined, nowMs));
  }

  async list(filter: DelegationFilter = {}): Promise<Delegation[]> {
    if (filter === null || typeof filter !== "object")
      throw invalid("the filter must be an object", { field: "filter" });
    const { agentId, role, activeOnly } = filter;
    if (role !== undefined && role !== "parent" && role !== "child" && role !== "ancestor") {
      throw invalid("role must be parent, child or ancestor", { field: "role" });
    }
    if (role !== undefined && (typeof agentId !== "string" || agentId === "")) {
      throw invalid("a role needs the agentId it is relative to", { field: "agentId" });
    }
    const all = await this.#deps.store.listDelegations(this.#deps.org);
    const byId = new Map(all.map((row) => [row.id, row]));
    const nowMs = Date.now();
    const out: Delegation[] = [];
    for (const row of all) {
      const chain = chainOf(row, byId);
      if (role === "parent" && row.parentAgentId !== agentId) continue;
      if (role === "child" && row.childAgentId !== agentId) continue;
      if (role === "ancestor" && !chain.slice(0, -1).includes(agentId!)) continue;
      const state = stateAt(row, ancestorsState(row, byId, nowMs), nowMs);
      if (activeOnly === true && state !== "active") continue;
      out.push(toDelegation(row, chain, state));
    }
    return out;
  }

  /** Appends a `delegation.expired` record for each delegation whose time is up (once, across processes). */
  expireDue(): Promise<void> {
    if (this.#expiring) return this.#expiring;
    const run = this.#expireNow().finally(() => {
      if (this.#expiring === run) this.#expiring = undefined;
    });
    this.#expiring = run;
    return run;
  }

  async #expireNow(): Promise<void> {
    try {
      const due = this.registry.dueForExpiry(Date.now());
      if (due.length === 0) return;
      const byId = new Map(
        (await this.#deps.store.listDelegations(this.#deps.org)).map((row) => [row.id, row]),
      );
      await Promise.all(
        due.map(async (row) => {
          const at = new Date().toISOString();
          const written = await this.#write(
            "delegation.expired",
            row,
            chainOf(row, byId),
            { type: "delegation.expire", delegationId: row.id, at },
            { reason: `expired at ${row.expiresAt}` },
            false,
          );
          // Written here or by another process: either way the expiry is recorded.
          this.registry.apply({ ...row, expiredAt: written ? at : row.expiresAt });
        }),
      );
    } catch {
      // The store is unreachable: the next tick retries (expired delegations are denied meanwhile).
    }
  }

  /** Appends a delegation record with its effect; false when the conditional effect did not apply (and `strict` is off). */
  async #write(
    kind: "delegation.created" | "delegation.revoked" | "delegation.expired",
    row: DelegationRow,
    chain: string[],
    effect: StoreEffect,
    extra: Partial<RecordFields>,
    strict = true,
  ): Promise<boolean> {
    const fields = this.#deps.systemFields(kind, row.childAgentId, ACTION_TYPES[kind], {
      delegation: chain,
      metadata: {
        delegationId: row.id,
        parentDelegationId: row.parentDelegationId,
        name: row.name,
        capabilities: row.capabilities,
        expiresAt: row.expiresAt,
      },
      ...extra,
    });
    const outcome = await this.#deps.append({ fields, encoded: encodeRecord(fields), effects: [effect] });
    if (!outcome.ok) {
      if (strict) throw outcome.error;
      return false;
    }
    return true;
  }
}

const ACTION_TYPES = {
  "delegation.created": "delegation.create",
  "delegation.revoked": "delegation.revoke",
  "delegation.expired": "delegation.expire",
} as const;

/** Agent ids from the root down to the row's child, from the rows at hand. */
export function chainOf(row: DelegationRow, byId: ReadonlyMap<string, DelegationRow>): string[] {
  const chain = [row.childAgentId];
  let current: DelegationRow | undefined = row;
  for (let depth = 0; current && depth <= MAX_DELEGATION_DEPTH; depth++) {
    chain.unshift(current.parentAgentId);
    current = current.parentDelegationId === null ? undefined : byId.get(current.parentDelegationId);
  }
  return chain;
}

function ancestorsState(
  row: DelegationRow,
  byId: ReadonlyMap<string, DelegationRow>,
  nowMs: number,
): DelegationState | undefined {
  let parent = row.parentDelegationId === null ? undefined : byId.get(row.parentDelegationId);
  for (let depth = 0; parent && depth <= MAX_DELEGATION_DEPTH; depth++) {
    const state = stateAt(parent, undefined, nowMs);
    if (state !== "active") return state;
    parent = parent.parentDelegationId === null ? undefined : byId.get(parent.parentDelegationId);
  }
  return undefined;
}

function stateAt(row: DelegationRow, inherited: DelegationState | undefined, nowMs: number): DelegationState {
  if (row.revokedAt !== null) return "revoked";
  if (Date.parse(row.expiresAt) <= nowMs) return "expired";
  return inherited === undefined || inherited === "active" ? "active" : inherited;
}

export function toDelegation(row: DelegationRow, chain: string[], state: DelegationState): Delegation {
  return {
    id: row.id,
    name: row.name,
    agentId: row.childAgentId,
    parentAgentId: row.parentAgentId,
    parentDelegationId: row.parentDelegationId,
    capabilities: [...row.capabilities],
    issuedAt: row.issuedAt,
    expiresAt: row.expiresAt,
    state,
    ...(row.revokedAt === null ? {} : { revokedAt: row.revokedAt }),
    ...(row.revokedBy === null ? {} : { revokedBy: row.revokedBy }),
    chain: [...chain],
    depth: chain.length - 1,
  };
}
