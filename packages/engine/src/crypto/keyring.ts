/**
 * Ed25519 signing keys for evidence (audit checkpoints, receipts): key ids derived from the public
 * key, rotation that keeps old public keys published, and a JWKS that third parties verify against.
 * Raw signatures use node:crypto, which is synchronous and fast.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type JsonWebKey,
  type KeyObject,
  sign as signRaw,
  verify as verifyRaw,
} from "node:crypto";
import { base64url, fromBase64url, toBytes } from "./encoding.js";
import { KeyMaterialError } from "./errors.js";

/** One key as persisted. `privateJwk` is present only for the active key (retired keys drop it). */
export interface KeyringEntry {
  kid: string;
  createdAt: string;
  retiredAt?: string;
  publicJwk: JsonWebKey;
  privateJwk?: JsonWebKey;
}

/** The persisted form of a keyring. It contains the private key: store it with mode 0600. */
export interface KeyringData {
  version: 1;
  keys: KeyringEntry[];
}

/** A public key as published in the JWKS. */
export interface PublishedJwk extends JsonWebKey {
  kty: "OKP";
  crv: "Ed25519";
  x: string;
  kid: string;
  alg: "EdDSA";
  use: "sig";
}

/** A JSON Web Key Set (RFC 7517) as returned by {@link Keyring.jwks}. */
export interface Jwks {
  keys: JsonWebKey[];
}

/** A detached signature and the key that made it. */
export interface KeyringSignature {
  kid: string;
  /** base64url (no padding) Ed25519 signature, 64 bytes. */
  signature: string;
}

/**
 * The key id of an Ed25519 public key: its RFC 7638 JWK thumbprint (SHA-256, base64url). It depends
 * only on the key, so it is stable across processes and recomputable by anyone holding the JWKS.
 */
export function ed25519Kid(publicJwk: { x: string }): string {
  const canonical = `{"crv":"Ed25519","kty":"OKP","x":"${publicJwk.x}"}`;
  return createHash("sha256").update(canonical).digest("base64url");
}

interface LoadedKey {
  entry: KeyringEntry;
  publicKey: KeyObject;
  privateKey?: KeyObject;
}

/** A set of Ed25519 keys with exactly one active (signing) key. */
export class Keyring {
  readonly #keys: LoadedKey[];

  private constructor(keys: LoadedKey[]) {
    this.#keys = keys;
  }

  /** A new keyring holding one freshly generated active key. */
  static generate(now: Date = new Date()): Keyring {
    return new Keyring([generateKey(now)]);
  }

  /**
   * Loads a persisted keyring. Throws {@link KeyMaterialError} (code `INVALID_KEYRING`) naming the
   * first problem: wrong version, malformed JWK, kid not matching its key, private key not matching
   * its public key, duplicate kids, or not exactly one active key.
   */
  static fromJSON(data: KeyringData): Keyring {
    const fail = (message: string): never => {
      throw new KeyMaterialError("INVALID_KEYRING", `Invalid keyring: ${message}`);
    };
    if (typeof data !== "object" || data === null) fail("expected an object { version: 1, keys: [...] }");
    if (data.version !== 1) fail(`unsupported version ${JSON.stringify(data.version)} (expected 1)`);
    if (!Array.isArray(data.keys) || data.keys.length === 0) fail("`keys` must be a non-empty array");
    const seen = new Set<string>();
    const loaded = data.keys.map((raw, index) => {
      const where = `keys[${index}]`;
      if (typeof raw !== "object" || raw === null) return fail(`${where} is not an object`);
      if (typeof raw.kid !== "string" || raw.kid === "")
        return fail(`${where}.kid must be a non-empty string`);
      if (seen.has(raw.kid)) return fail(`${where}.kid ${raw.kid} is duplicated`);
      seen.add(raw.kid);
      checkIsoTime(raw.createdAt, `${where}.createdAt`, fail);
      if (raw.retiredAt !== undefined) checkIsoTime(raw.retiredAt, `${where}.retiredAt`, fail);
      const pub = raw.publicJwk;
      if (typeof pub !== "object" || pub === null || pub.kty !== "OKP" || pub.crv !== "Ed25519") {
        return fail(`${where}.publicJwk must be an Ed25519 JWK (kty "OKP", crv "Ed25519")`);
      }
      const x = typeof pub.x === "string" ? fromBase64url(pub.x) : undefined;
      if (x?.length !== 32) return fail(`${where}.publicJwk.x must be a 32-byte base64url value`);
      const expectedKid = ed25519Kid({ x: pub.x as string });
      if (raw.kid !== expectedKid) {
        return fail(`${where}.kid ${raw.kid} does not match its public key (expected ${expectedKid})`);
      }
      const publicKey = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x: pub.x }, format: "jwk" });
      let privateKey: KeyObject | undefined;
      if (raw.privateJwk !== undefined) {
        const priv = raw.privateJwk;
        const d = typeof priv?.d === "string" ? fromBase64url(priv.d) : undefined;
        if (priv?.kty !== "OKP" || priv.crv !== "Ed25519" || d?.length !== 32) {
          return fail(`${where}.privateJwk must be an Ed25519 private JWK with a 32-byte "d"`);
        }
        privateKey = createPrivateKey({
          key: { kty: "OKP", crv: "Ed25519", x: pub.x, d: priv.d },
          format: "jwk",
        });
        const derivedX = createPublicKey(privateKey).export({ format: "jwk" }).x;
        if (derivedX !== pub.x) return fail(`${where}.privateJwk does not belong to ${where}.publicJwk`);
      }
      const entry: KeyringEntry = {
        kid: raw.kid,
        createdAt: raw.createdAt,
        ...(raw.retiredAt !== undefined ? { retiredAt: raw.retiredAt } : {}),
        publicJwk: { kty: "OKP", crv: "Ed25519", x: pub.x },
        ...(raw.privateJwk !== undefined ? { privateJwk: { ...raw.privateJwk } } : {}),
      };
      return { entry, publicKey, ...(privateKey ? { privateKey } : {}) } satisfies LoadedKey;
    });
    const active = loaded.filter((key) => key.entry.retiredAt === undefined);
    if (active.length !== 1) {
      fail(`expected exactly one active key (without retiredAt), found ${active.length}`);
    }
    if (!active[0]!.privateKey) fail(`the active key ${active[0]!.entry.kid} has no privateJwk`);
    return new Keyring(loaded);
  }

  /** The persisted form, including the active private key. Write it with file mode 0600. */
  toJSON(): KeyringData {
    return {
      version: 1,
      keys: this.#keys.map(({ entry }) => ({
        ...entry,
        publicJwk: { ...entry.publicJwk },
        ...(entry.privateJwk ? { privateJwk: { ...entry.privateJwk } } : {}),
      })),
    };
  }

  /**
   * Generates a new active key and retires the current one. The retired key's private part is
   * discarded (nothing signs with it again); its public part stays in {@link jwks} so evidence it
   * signed still verifies. Returns the new active kid.
   */
  rotate(now: Date = new Date()): string {
    const current = this.#active();
    current.entry.retiredAt = now.toISOString();
    delete current.entry.privateJwk;
    delete current.privateKey;
    const next = generateKey(now);
    this.#keys.push(next);
    return next.entry.kid;
  }

  /** The kid of the key that {@link sign} uses. */
  get activeKid(): string {
    return this.#active().entry.kid;
  }

  /** Every kid this keyring publishes, oldest first. */
  get kids(): string[] {
    return this.#keys.map((key) => key.entry.kid);
  }

  /** Signs `data` (strings are UTF-8 encoded) with the active key. */
  sign(data: Uint8Array | string): KeyringSignature {
    const active = this.#active();
    const signature = signRaw(null, toBytes(data), active.privateKey!);
    return { kid: active.entry.kid, signature: base64url(signature) };
  }

  /** Verifies a signature made by any key of this keyring (active or retired). Never throws. */
  verify(kid: string, data: Uint8Array | string, signature: string): boolean {
    const key = this.#keys.find((candidate) => candidate.entry.kid === kid);
    if (!key) return false;
    return safelyVerifyEd25519(key.publicKey, data, signature);
  }

  /** The public keys (active and retired), each with kid, alg "EdDSA" and use "sig". */
  jwks(): { keys: PublishedJwk[] } {
    return {
      keys: this.#keys.map(({ entry }) => ({
        kty: "OKP",
        crv: "Ed25519",
        x: entry.publicJwk.x as string,
        kid: entry.kid,
        alg: "EdDSA",
        use: "sig",
      })),
    };
  }

  #active(): LoadedKey {
    // fromJSON/generate/rotate keep exactly one active key with a private part.
    return this.#keys.find((key) => key.entry.retiredAt === undefined)!;
  }
}

/**
 * Verifies an Ed25519 signature against the key `kid` of a JWKS. Returns false (never throws) for an
 * unknown kid, a key that is not Ed25519, a malformed signature or a wrong one.
 */
export function verifySignature(
  jwks: Jwks,
  kid: string,
  data: Uint8Array | string,
  signature: string,
): boolean {
  const publicKey = safelyPublicKeyFromJwks(jwks, kid);
  return publicKey ? safelyVerifyEd25519(publicKey, data, signature) : false;
}

/** The Ed25519 public key published under `kid`, or undefined when absent or unusable. */
export function safelyPublicKeyFromJwks(jwks: Jwks, kid: string): KeyObject | undefined {
  try {
    if (typeof kid !== "string" || !Array.isArray(jwks?.keys)) return undefined;
    const jwk = jwks.keys.find((candidate) => candidate?.kid === kid);
    if (jwk?.kty !== "OKP" || jwk.crv !== "Ed25519" || typeof jwk.x !== "string") return undefined;
    if (jwk.alg !== undefined && jwk.alg !== "EdDSA" && jwk.alg !== "Ed25519") return undefined;
    if (jwk.use !== undefined && jwk.use !== "sig") return undefined;
    if (fromBase64url(jwk.x)?.length !== 32) return undefined;
    return cachedPublicKey(jwk.x);
  } catch {
    return undefined;
  }
}

// Importing a JWK costs a few microseconds; verifying many checkpoints or receipts reuses keys.
const publicKeyCache = new Map<string, KeyObject>();
const PUBLIC_KEY_CACHE_LIMIT = 256;

function cachedPublicKey(x: string): KeyObject {
  let key = publicKeyCache.get(x);
  if (!key) {
    key = createPublicKey({ key: { kty: "OKP", crv: "Ed25519", x }, format: "jwk" });
    if (publicKeyCache.size >= PUBLIC_KEY_CACHE_LIMIT) publicKeyCache.clear();
    publicKeyCache.set(x, key);
  }
  return key;
}

function safelyVerifyEd25519(publicKey: KeyObject, data: Uint8Array | string, signature: string): boolean {
  try {
    if (typeof signature !== "string") return false;
    const raw = fromBase64url(signature);
    if (raw?.length !== 64) return false;
    return verifyRaw(null, toBytes(data), publicKey, raw);
  } catch {
    return false;
  }
}

function generateKey(now: Date): LoadedKey {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const pub = publicKey.export({ format: "jwk" });
  const priv = privateKey.export({ format: "jwk" });
  const x = pub.x as string;
  const entry: KeyringEntry = {
    kid: ed25519Kid({ x }),
    createdAt: now.toISOString(),
    publicJwk: { kty: "OKP", crv: "Ed25519", x },
    privateJwk: { kty: "OKP", crv: "Ed25519", x, d: priv.d as string },
  };
  return { entry, publicKey, privateKey };
}

function checkIsoTime(value: unknown, where: string, fail: (message: string) => never): void {
  if (typeof value !== "string" || Number.isNaN(Date.parse(value))) {
    fail(`${where} must be an ISO 8601 time string`);
  }
}
