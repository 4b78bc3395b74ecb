/**
 * Typed errors of the key material modules, so callers can tell bad key files from other failures.
 */

export type KeyMaterialErrorCode = "INVALID_KEYRING" | "INVALID_HMAC_KEYS" | "INVALID_SIGNING_INPUT";

/** Thrown when key material (a keyring or HMAC key set) or a signing input is malformed. */
export class KeyMaterialError extends Error {
  override readonly name = "KeyMaterialError";
  constructor(
    readonly code: KeyMaterialErrorCode,
    message: string,
  ) {
    super(message);
  }
}
