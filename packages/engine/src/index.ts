/**
 * @aa/engine: the in-process decision service. Decisions, approvals, outcomes, receipts and a
 * tamper-evident audit chain over a memory, SQLite or PostgreSQL store.
 */

export { type AuditRecord, GENESIS_HASH, type RecordKind } from "./chain/record.js";
export { checkpointPayload } from "./checkpoint.js";
export { type Jwks, Keyring, type KeyringData, verifySignature } from "./crypto/keyring.js";
export { HmacKeySet } from "./crypto/secret.js";
export {
  canonicalHost,
  EGRESS_ACTION_TYPE,
  type EgressArgs,
  egressArgsForTunnel,
  egressArgsForUrl,
} from "./egress.js";
export { DecisionEngine, openEngine } from "./engine.js";
export { EngineError, type EngineErrorCode } from "./errors.js";
export { ENGINE_EVENT_TYPES } from "./events.js";
export { EXPORT_FORMAT, type ExportVerifyResult, verifyExport } from "./export.js";
export {
  type ReceiptClaims,
  type ReceiptVerification,
  signReceipt,
  verifyReceipt,
} from "./receipts/receipt.js";
export { compileRedactor, type RedactionResult, type Redactor } from "./redaction/index.js";
export { SQLITE_MIGRATIONS } from "./store/sqlite.js";
export type * from "./types.js";
