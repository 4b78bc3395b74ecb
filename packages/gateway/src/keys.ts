/**
 * API keys: `aa_<kind>_<id>_<secret>`. The id is public (it names the key in lists and logs); the
 * secret is 256 random bits, stored only as its SHA-256 (a plain hash is enough for a secret that
 * cannot be guessed) and compared in constant time.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { GatewayError } from "./errors.js";
import type { ApiKeyRecord, GatewayStore, KeyKind } from "./gateway-store.js";

const KEY_RE = /^aa_(agent|operator|admin)_([0-9a-f]{16})_([0-9a-f]{64})$/;
const ORG_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
// No "/": `<parent>/<name>` is how delegated children are named, so a key cannot pose as one.
const AGENT_RE = /^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$/;
const KINDS: readonly KeyKind[] = ["agent", "operator", "admin"];

/** The principal a verified key speaks for. */
export interface Principal {
  keyId: string;
  kind: KeyKind;
  orgId: string;
  /** Set for agent keys: the only agent this key may act as. */
  agentId?: string;
  /** Who approves, denies or contains when this key does: the key's name, else `<kind>:<keyId>`. */
  reviewer: string;
}

/** What a caller asks for when creating a key. */
export interface CreateKeyInput {
  kind: KeyKind;
  orgId: string;
  agentId?: string;
  name?: string;
}

/** A freshly created key: `key` is the only time the secret exists outside the caller's hands. */
export interface CreatedKey {
  id: string;
  key: string;
  kind: KeyKind;
  orgId: string;
  agentId?: string;
  name?: string;
  createdAt: string;
}

/** The public view of a stored key (never the hash). */
export interface ApiKeyInfo {
  id: string;
  kind: KeyKind;
  orgId: string;
  agentId?: string;
  name?: string;
  createdAt: string;
  revokedAt?: string;
}

export function hashSecret(secret: string): string {
  return createHash("sha256").update(secret).digest("hex");
}

export function keyInfo(record: ApiKeyRecord): ApiKeyInfo {
  const { secretHash: _hidden, ...info } = record;
  return info;
}

/** Checks a key request; throws INVALID_KEY_REQUEST naming the field. */
export function validateCreateKey(input: CreateKeyInput): void {
  if (!KINDS.includes(input.kind)) {
    throw new GatewayError("INVALID_KEY_REQUEST", 400, "kind must be one of agent, operator, admin", {
      field: "kind",
    });
  }
  if (typeof input.orgId !== "string" || !ORG_RE.test(input.orgId)) {
    throw new GatewayError(
      "INVALID_KEY_REQUEST",
      400,
      "the org id must be 1-200 letters, digits, '.', '_' or '-', starting with a letter or digit",
      { field: "orgId" },
    );
  }
  if (input.kind === "agent") {
    if (typeof input.agentId !== "string" || !AGENT_RE.test(input.agentId)) {
      throw new GatewayError(
        "INVALID_KEY_REQUEST",
        400,
        "an agent key needs agentId: 1-200 letters, digits or . _ : @ -, starting with a letter or digit (no /: it names delegated agents)",
        { field: "agentId" },
      );
    }
  } else if (input.agentId !== undefined) {
    throw new GatewayError(
      "INVALID_KEY_REQUEST",
      400,
      `an ${input.kind} key acts for the whole org; drop agentId (or create an agent key)`,
      { field: "agentId" },
    );
  }
  if (input.name !== undefined && (typeof input.name !== "string" || input.name.length > 200)) {
    throw new GatewayError("INVALID_KEY_REQUEST", 400, "name must be a string of at most 200 characters", {
      field: "name",
    });
  }
}

/** Creates a key in `store` and returns it with its secret (shown once). */
export async function createKey(store: GatewayStore, input: CreateKeyInput): Promise<CreatedKey> {
  validateCreateKey(input);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("hex");
  const createdAt = new Date().toISOString();
  const record: ApiKeyRecord = {
    id,
    kind: input.kind,
    orgId: input.orgId,
    ...(input.agentId !== undefined ? { agentId: input.agentId } : {}),
    ...(input.name !== undefined && input.name !== "" ? { name: input.name } : {}),
    secretHash: hashSecret(secret),
    createdAt,
  };
  await store.insertKey(record);
  const { secretHash: _hash, ...rest } = record;
  return { ...rest, key: `aa_${input.kind}_${id}_${secret}` };
}

function unauthenticated(message: string): GatewayError {
  return new GatewayError("UNAUTHENTICATED", 401, message);
}

/**
 * Verifies bearer keys against the store, caching verified keys for `cacheMs` so a decision does
 * not pay a database read. A revocation through this gateway takes effect at once; one made by
 * another process (`aa keys revoke`, another replica) within `cacheMs`.
 *
 * A verified key is also remembered by the exact `Authorization` value that presented it, so the
 * next request with the same header skips the parse and the SHA-256 (a third of the auth cost at
 * 10k decisions/s). Only a value that passed the full constant-time check is ever remembered; any
 * other value (a wrong secret of a known id included) takes the full path every time.
 */
export class KeyVerifier {
  readonly #store: GatewayStore;
  readonly #cacheMs: number;
  readonly #cache = new Map<string, { record: ApiKeyRecord; until: number }>();
  /** `Authorization` value -> its verified principal, until the record's cache entry expires. */
  readonly #verified = new Map<string, { keyId: string; principal: Principal; until: number }>();

  constructor(store: GatewayStore, cacheMs: number) {
    this.#store = store;
    this.#cacheMs = cacheMs;
  }

  /** The principal of an `Authorization` header value; 401 UNAUTHENTICATED otherwise. */
  async verify(authorization: string | undefined): Promise<Principal> {
    if (authorization !== undefined) {
      const known = this.#verified.get(authorization);
      if (known !== undefined && known.until > Date.now()) return known.principal;
    }
    if (authorization === undefined || authorization === "") {
      throw unauthenticated(
        "Send an API key in the Authorization header: `Bearer` and the key that `aa keys create` printed",
      );
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    const parsed = match ? KEY_RE.exec(match[1]!) : null;
    if (!parsed) {
      throw unauthenticated(
        "The Authorization header is not `Bearer` and an Agent Assembly key (aa_agent_..., aa_operator_... or aa_admin_...); copy the key printed by `aa keys create` exactly",
      );
    }
    const [, kind, id, secret] = parsed as unknown as [string, KeyKind, string, string];
    const cached = await this.#lookup(id);
    const record = cached?.record;
    const presented = Buffer.from(hashSecret(secret), "hex");
    const valid =
      record !== undefined &&
      record.kind === kind &&
      timingSafeEqual(presented, Buffer.from(record.secretHash, "hex"));
    if (!valid)
      throw unauthenticated("This API key is not known to the gateway; check it or create a new one");
    if (record.revokedAt !== undefined) {
      throw unauthenticated(`This API key was revoked at ${record.revokedAt}; ask an admin for a new one`);
    }
    const principal: Principal = Object.freeze({
      keyId: record.id,
      kind: record.kind,
      orgId: record.orgId,
      ...(record.agentId !== undefined ? { agentId: record.agentId } : {}),
      reviewer: record.name ?? `${record.kind}:${record.id}`,
    });
    if (cached !== undefined && cached.until !== undefined) {
      if (this.#verified.size >= MAX_CACHED) this.#verified.clear();
      this.#verified.set(authorization, { keyId: record.id, principal, until: cached.until });
    }
    return principal;
  }

  /** Forget a key now (after this gateway revoked it). */
  forget(id: string): void {
    this.#cache.delete(id);
    for (const [authorization, entry] of this.#verified) {
      if (entry.keyId === id) this.#verified.delete(authorization);
    }
  }

  /** The stored record, and until when it may be trusted without re-reading (undefined: not cached). */
  async #lookup(id: string): Promise<{ record: ApiKeyRecord; until?: number } | undefined> {
    const now = Date.now();
    const cached = this.#cache.get(id);
    if (cached && cached.until > now) return cached;
    const record = await this.#store.getKey(id);
    if (record === undefined) return undefined;
    if (this.#cacheMs <= 0) return { record };
    if (this.#cache.size >= MAX_CACHED) this.#cache.clear();
    const entry = { record, until: now + this.#cacheMs };
    this.#cache.set(id, entry);
    return entry;
  }
}

/** Bound on each cache (a flood of distinct keys empties it rather than growing without limit). */
const MAX_CACHED = 10_000;
