/**
 * Versioned HMAC secrets for redaction's `hash` mode. Hashes carry the key version
 * (`hmac-sha256:v3:...`), so after a rotation old hashes are still attributable to their key, and
 * equal values hashed under the same version still correlate.
 */
import { randomBytes } from "node:crypto";
import { base64url, fromBase64url } from "./encoding.js";
import { KeyMaterialError } from "./errors.js";

/** One persisted HMAC key: `secret` is base64url (no padding), at least 32 bytes. */
export interface HmacKeyEntry {
  version: number;
  secret: string;
  createdAt?: string;
}

/** The persisted form of an HMAC key set. It is secret: store it with file mode 0600. */
export type HmacKeySetData = HmacKeyEntry[];

/** A usable HMAC key, as `compileRedactor` takes it. */
export interface HmacKey {
  version: number;
  secret: Uint8Array;
}

const SECRET_BYTES = 32;

/** A set of HMAC keys; the one with the highest version is active. */
export class HmacKeySet {
  readonly #entries: HmacKeyEntry[];

  private constructor(entries: HmacKeyEntry[]) {
    this.#entries = entries;
  }

  /** A new set holding one random 256-bit key, version 1. */
  static generate(now: Date = new Date()): HmacKeySet {
    return new HmacKeySet([newEntry(1, now)]);
  }

  /**
   * Loads a persisted set. Throws {@link KeyMaterialError} (code `INVALID_HMAC_KEYS`) for an empty
   * list, a version that is not a positive integer or is duplicated, or a secret shorter than 32 bytes.
   */
  static fromJSON(data: HmacKeySetData): HmacKeySet {
    const fail = (message: string): never => {
      throw new KeyMaterialError("INVALID_HMAC_KEYS", `Invalid HMAC key set: ${message}`);
    };
    if (!Array.isArray(data) || data.length === 0) fail("expected a non-empty array of { version, secret }");
    const versions = new Set<number>();
    const entries = data.map((raw, index) => {
      const where = `[${index}]`;
      if (typeof raw !== "object" || raw === null) return fail(`${where} is not an object`);
      if (!Number.isSafeInteger(raw.version) || raw.version < 1) {
        return fail(`${where}.version must be a positive integer`);
      }
      if (versions.has(raw.version)) return fail(`${where}.version ${raw.version} is duplicated`);
      versions.add(raw.version);
      const secret = typeof raw.secret === "string" ? fromBase64url(raw.secret) : undefined;
      if (!secret || secret.length < SECRET_BYTES) {
        return fail(`${where}.secret must be base64url encoding at least ${SECRET_BYTES} bytes`);
      }
      if (
        raw.createdAt !== undefined &&
        (typeof raw.createdAt !== "string" || Number.isNaN(Date.parse(raw.createdAt)))
      ) {
        return fail(`${where}.createdAt must be an ISO 8601 time string`);
      }
      return { ...raw };
    });
    entries.sort((a, b) => a.version - b.version);
    return new HmacKeySet(entries);
  }

  /** The persisted form (secrets included). */
  toJSON(): HmacKeySetData {
    return this.#entries.map((entry) => ({ ...entry }));
  }

  /** Adds a new random key with the next version and makes it active. Returns the new version. */
  rotate(now: Date = new Date()): number {
    const version = this.activeVersion + 1;
    this.#entries.push(newEntry(version, now));
    return version;
  }

  get activeVersion(): number {
    return this.#entries[this.#entries.length - 1]!.version;
  }

  /** The active key, in the shape `compileRedactor({ hmacKey })` expects. */
  activeKey(): HmacKey {
    return this.key(this.activeVersion)!;
  }

  /** The key of a given version (to recompute an old hash), or undefined. */
  key(version: number): HmacKey | undefined {
    const entry = this.#entries.find((candidate) => candidate.version === version);
    return entry
      ? { version: entry.version, secret: new Uint8Array(fromBase64url(entry.secret)!) }
      : undefined;
  }
}

function newEntry(version: number, now: Date): HmacKeyEntry {
  return { version, secret: base64url(randomBytes(SECRET_BYTES)), createdAt: now.toISOString() };
}
