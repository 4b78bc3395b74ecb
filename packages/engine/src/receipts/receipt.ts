/**
 * Receipts: the evidence an executed action hands back. A receipt is a compact JWS (RFC 7515)
 * signed with the evidence keyring's active Ed25519 key, so anyone holding only the published JWKS
 * can check it offline, with any JOSE library.
 *
 * Header: `{"alg":"EdDSA","typ":"aa-receipt+jwt","kid":"<RFC 7638 thumbprint>"}`.
 * Payload: RFC 8785 canonical JSON of `{ "v": 1, ...ReceiptClaims }` (camelCase, see below).
 */
import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { compactVerify } from "jose";
import { type Jwks, type Keyring, safelyPublicKeyFromJwks } from "../crypto/keyring.js";
import type { ActionStatus, OutcomeStatus } from "../types.js";

/** The JWS `typ` header of a receipt (explicit typing, RFC 8725 §3.11). */
export const RECEIPT_TYPE = "aa-receipt+jwt";
/** The only signature algorithm a receipt may use. */
export const RECEIPT_ALGORITHM = "EdDSA";
/** The payload format version, carried as `v`. */
export const RECEIPT_FORMAT_VERSION = 1;

const ACTION_STATUSES: readonly ActionStatus[] = ["executed", "requested", "denied"];
const OUTCOME_STATUSES: readonly OutcomeStatus[] = ["success", "failure", "partial"];

/** What a receipt binds. Field names are camelCase, in the payload as here. */
export interface ReceiptClaims {
  /** Audit record id of the action. */
  auditEventId: string;
  /** Organisation (tenant) whose audit chain holds the record. */
  org: string;
  agentId: string;
  actionType: string;
  /** Hash of the redacted args, as recorded in the audit record (e.g. `sha256:<hex>`). */
  argsHash: string;
  /** The decision's status (receipts are issued for `executed` actions). */
  status: ActionStatus;
  /** Name of the deciding policy; null when none matched. */
  policyName: string | null;
  /** Hash of the loaded policy document. */
  policyHash: string;
  /** The approval that released the call; null when none was needed. */
  approvalId: string | null;
  /** Agent ids from the root agent down to `agentId` (a single element for a root agent). */
  delegationChain: string[];
  /** Position of the audit record in its chain. */
  chain: { seq: number; recordHash: string };
  /** ISO 8601 time the receipt was signed. */
  issuedAt: string;
  /** Present once an outcome was reported; a new receipt is issued then. */
  outcome?: ReceiptOutcome;
}

export interface ReceiptOutcome {
  status: OutcomeStatus;
  /** `sha256:<hex>` of the outcome message ({@link hashOutcomeMessage}); null when there was none. */
  messageHash: string | null;
}

/** The result of {@link verifyReceipt}. */
export type ReceiptVerification =
  | { valid: true; claims: ReceiptClaims; kid: string }
  | { valid: false; problem: string };

/** Thrown by {@link signReceipt} when the claims are incomplete or malformed. */
export class ReceiptClaimsError extends Error {
  override readonly name = "ReceiptClaimsError";
}

/** `sha256:<hex>` of an outcome message (UTF-8), or null when there is no message. */
export function hashOutcomeMessage(message: string | undefined | null): string | null {
  if (message === undefined || message === null) return null;
  return `sha256:${createHash("sha256").update(message, "utf8").digest("hex")}`;
}

/**
 * Signs a receipt with the keyring's active key and returns the compact JWS. Throws
 * {@link ReceiptClaimsError} naming the field when the claims are malformed.
 */
export async function signReceipt(claims: ReceiptClaims, keyring: Keyring): Promise<string> {
  const problem = describeClaimsProblem(claims);
  if (problem) throw new ReceiptClaimsError(`Cannot sign receipt: ${problem}`);
  const payload = canonicalize({ v: RECEIPT_FORMAT_VERSION, ...pickClaims(claims) })!;
  const header = { alg: RECEIPT_ALGORITHM, typ: RECEIPT_TYPE, kid: keyring.activeKid };
  const signingInput = `${encodeSegment(JSON.stringify(header))}.${encodeSegment(payload)}`;
  const { kid, signature } = keyring.sign(signingInput);
  if (kid !== header.kid) throw new Error("keyring active key changed while signing a receipt");
  return `${signingInput}.${signature}`;
}

/**
 * Verifies a receipt against a JWKS. Never throws: any failure is `{ valid: false, problem }`. Only
 * `alg` EdDSA and `typ` aa-receipt+jwt are accepted (so HS256 or `none` tokens, and other JWTs
 * signed by the same key, are refused), the `kid` must be published in the JWKS, and the payload
 * must be a well-formed version-1 receipt.
 */
export async function verifyReceipt(jws: string, jwks: Jwks): Promise<ReceiptVerification> {
  try {
    if (typeof jws !== "string") return invalid("receipt must be a string (compact JWS)");
    const segments = jws.split(".");
    if (segments.length !== 3)
      return invalid("malformed receipt: a compact JWS has three dot-separated segments");
    const header = safelyDecodeJsonSegment(segments[0]!);
    if (!isPlainObject(header))
      return invalid("malformed receipt: the protected header is not base64url JSON");
    if (header.alg !== RECEIPT_ALGORITHM) {
      return invalid(`unsupported alg ${JSON.stringify(header.alg)}: receipts are signed with EdDSA only`);
    }
    if (header.typ !== RECEIPT_TYPE) {
      return invalid(`unexpected typ ${JSON.stringify(header.typ)}: expected "${RECEIPT_TYPE}"`);
    }
    if (typeof header.kid !== "string" || header.kid === "")
      return invalid("the protected header has no kid");
    const kid = header.kid;
    const publicKey = safelyPublicKeyFromJwks(jwks, kid);
    if (!publicKey) {
      return invalid(
        `unknown kid ${kid}: the JWKS does not publish this Ed25519 key (was a rotated key removed from the JWKS?)`,
      );
    }
    let payloadBytes: Uint8Array;
    try {
      ({ payload: payloadBytes } = await compactVerify(jws, publicKey, { algorithms: [RECEIPT_ALGORITHM] }));
    } catch (error) {
      const code = (error as { code?: string }).code;
      if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") {
        return invalid(
          `signature verification failed for kid ${kid}: the receipt was altered or signed by another key`,
        );
      }
      return invalid(`invalid JWS: ${(error as Error).message}`);
    }
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payloadBytes));
    } catch {
      return invalid("the payload is not UTF-8 JSON");
    }
    if (!isPlainObject(payload)) return invalid("the payload is not a JSON object");
    if (payload.v !== RECEIPT_FORMAT_VERSION) {
      return invalid(`unsupported receipt format version ${JSON.stringify(payload.v)} (expected 1)`);
    }
    const problem = describeClaimsProblem(payload);
    if (problem) return invalid(`the payload is not a valid receipt: ${problem}`);
    return { valid: true, claims: pickClaims(payload as unknown as ReceiptClaims), kid };
  } catch (error) {
    return invalid(`receipt could not be verified: ${(error as Error)?.message ?? String(error)}`);
  }
}

function invalid(problem: string): ReceiptVerification {
  return { valid: false, problem };
}

function encodeSegment(text: string): string {
  return Buffer.from(text, "utf8").toString("base64url");
}

function safelyDecodeJsonSegment(segment: string): unknown {
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(segment)) return undefined;
    return JSON.parse(Buffer.from(segment, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Copies exactly the receipt fields, so unknown properties never reach a payload or a caller. */
function pickClaims(claims: ReceiptClaims): ReceiptClaims {
  return {
    auditEventId: claims.auditEventId,
    org: claims.org,
    agentId: claims.agentId,
    actionType: claims.actionType,
    argsHash: claims.argsHash,
    status: claims.status,
    policyName: claims.policyName,
    policyHash: claims.policyHash,
    approvalId: claims.approvalId,
    delegationChain: [...claims.delegationChain],
    chain: { seq: claims.chain.seq, recordHash: claims.chain.recordHash },
    issuedAt: claims.issuedAt,
    ...(claims.outcome
      ? { outcome: { status: claims.outcome.status, messageHash: claims.outcome.messageHash } }
      : {}),
  };
}

/** The first thing wrong with a claims object, or undefined when it is well-formed. */
function describeClaimsProblem(value: unknown): string | undefined {
  if (!isPlainObject(value)) return "claims must be an object";
  for (const field of [
    "auditEventId",
    "org",
    "agentId",
    "actionType",
    "argsHash",
    "policyHash",
    "issuedAt",
  ]) {
    if (typeof value[field] !== "string" || value[field] === "") return `${field} must be a non-empty string`;
  }
  if (Number.isNaN(Date.parse(value.issuedAt as string))) return "issuedAt must be an ISO 8601 time";
  if (!ACTION_STATUSES.includes(value.status as ActionStatus)) {
    return `status must be one of ${ACTION_STATUSES.join(", ")}`;
  }
  for (const field of ["policyName", "approvalId"]) {
    if (value[field] !== null && (typeof value[field] !== "string" || value[field] === "")) {
      return `${field} must be a non-empty string or null`;
    }
  }
  const chain = value.delegationChain;
  if (
    !Array.isArray(chain) ||
    chain.length === 0 ||
    !chain.every((id) => typeof id === "string" && id !== "")
  ) {
    return "delegationChain must be a non-empty array of agent ids";
  }
  const position = value.chain;
  if (!isPlainObject(position) || !Number.isSafeInteger(position.seq) || (position.seq as number) < 0) {
    return "chain.seq must be a non-negative integer";
  }
  if (typeof position.recordHash !== "string" || position.recordHash === "") {
    return "chain.recordHash must be a non-empty string";
  }
  if (value.outcome !== undefined) {
    const outcome = value.outcome;
    if (!isPlainObject(outcome) || !OUTCOME_STATUSES.includes(outcome.status as OutcomeStatus)) {
      return `outcome.status must be one of ${OUTCOME_STATUSES.join(", ")}`;
    }
    if (
      outcome.messageHash !== null &&
      (typeof outcome.messageHash !== "string" || outcome.messageHash === "")
    ) {
      return "outcome.messageHash must be a non-empty string or null";
    }
  }
  return undefined;
}
