export { KeyMaterialError, type KeyMaterialErrorCode } from "./errors.js";
export {
  ed25519Kid,
  type Jwks,
  Keyring,
  type KeyringData,
  type KeyringEntry,
  type KeyringSignature,
  type PublishedJwk,
  verifySignature,
} from "./keyring.js";
export { type HmacKey, type HmacKeyEntry, HmacKeySet, type HmacKeySetData } from "./secret.js";
