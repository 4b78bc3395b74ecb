/** Stable error codes thrown by @aa/engine. */
export type EngineErrorCode =
  | "INVALID_OPTIONS"
  | "INVALID_REQUEST"
  | "INVALID_AUDIT_EVENT_ID"
  | "INVALID_OUTCOME"
  | "INVALID_BODY"
  | "AUDIT_EVENT_NOT_FOUND"
  | "FORBIDDEN"
  | "REPORT_FAILED"
  | "IDEMPOTENCY_KEY_REUSED"
  | "APPROVAL_NOT_FOUND"
  | "APPROVAL_NOT_PENDING"
  | "APPROVAL_NOT_APPROVED"
  | "APPROVAL_ALREADY_USED"
  | "APPROVAL_WAIT_TIMEOUT"
  | "APPROVAL_WAIT_ABORTED"
  | "SELF_APPROVAL_FORBIDDEN"
  | "SELF_RELEASE_FORBIDDEN"
  | "AGENT_CONTAINED"
  | "POLICY_TAMPERED"
  | "AGENT_NOT_CONTAINED"
  | "BUDGET_EXCEEDED"
  | "RESERVATION_NOT_FOUND"
  | "STORE_UNAVAILABLE"
  | "STORE_SCHEMA_TOO_NEW"
  | "STORE_WRITE_FAILED"
  | "ENGINE_CLOSED"
  | "EXPORT_INVALID"
  | "DELEGATION_INVALID"
  | "DELEGATION_EXPIRED"
  | "DELEGATION_REVOKED"
  | "DELEGATION_NOT_FOUND"
  | "DELEGATION_NOT_ACTIVE"
  | "DELEGATION_EXISTS"
  | "CAPABILITY_ESCALATION"
  | "DELEGATION_TTL_EXCEEDED";

/**
 * The only error type @aa/engine throws. `status` is the HTTP status a gateway should answer
 * with; `code` is stable and safe to branch on; `details` carries structured context.
 */
export class EngineError extends Error {
  override readonly name = "EngineError";
  readonly code: EngineErrorCode;
  readonly status: number;
  readonly details: Record<string, unknown>;
  /** True when retrying the same request may succeed (store hiccups). */
  readonly retryable: boolean;

  constructor(
    code: EngineErrorCode,
    status: number,
    message: string,
    details: Record<string, unknown> = {},
    options: { cause?: unknown; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = status;
    this.details = details;
    this.retryable = options.retryable ?? false;
  }

  toJSON(): { code: string; status: number; message: string; details: Record<string, unknown> } {
    return { code: this.code, status: this.status, message: this.message, details: this.details };
  }
}

/** Wraps an unknown store failure without leaking the driver's message (it may quote SQL values). */
export function storeFailure(
  code: "STORE_WRITE_FAILED" | "REPORT_FAILED" | "STORE_UNAVAILABLE",
  what: string,
  cause: unknown,
): EngineError {
  if (cause instanceof EngineError) return cause;
  const driverCode = (cause as { code?: unknown } | null)?.code;
  return new EngineError(
    code,
    503,
    `${what} failed in the audit store${typeof driverCode === "string" ? ` (driver code ${driverCode})` : ""}; retry, and check that the store is reachable and writable`,
    typeof driverCode === "string" ? { driverCode } : {},
    { cause, retryable: true },
  );
}

/** A malformed request: 400 with a message saying what to send instead. */
export function invalid(message: string, details: Record<string, unknown> = {}): EngineError {
  return new EngineError("INVALID_REQUEST", 400, message, details);
}

export function reusedKey(key: string): EngineError {
  return new EngineError(
    "IDEMPOTENCY_KEY_REUSED",
    422,
    `The idempotency key (eventId) ${JSON.stringify(key)} was already used for a different request; use a new key for a new call`,
    { eventId: key },
  );
}

export function approvalNotFound(id: string): EngineError {
  return new EngineError("APPROVAL_NOT_FOUND", 404, `No approval with id ${id} in this organisation`, {
    approvalId: id,
  });
}

export function closedError(): EngineError {
  return new EngineError("ENGINE_CLOSED", 503, "The engine was closed; open a new one with openEngine()");
}
