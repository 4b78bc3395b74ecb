/**
 * Errors raised by Agent Assembly. Every error has a stable `code`, a message that says what is
 * wrong and how to fix it, and machine-readable `details`.
 */
import type { ConditionResult } from "@aa/policy";

export class AssemblyError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;

  constructor(code: string, message: string, details: Record<string, unknown> = {}, options?: ErrorOptions) {
    super(message, options);
    this.name = "AssemblyError";
    this.code = code;
    this.details = details;
  }
}

/** An option passed to `initAssembly` (or a policy it loads) is invalid. Raised before any side effect. */
export class ConfigurationError extends AssemblyError {
  /** The option at fault, e.g. `"mode"` or `"policy"`. */
  readonly option: string;

  constructor(
    option: string,
    message: string,
    details: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super("CONFIGURATION_ERROR", message, { option, ...details }, options);
    this.name = "ConfigurationError";
    this.option = option;
  }
}

/** The gate denied a call. `conditions` tells the caller (or the model) exactly which rule failed. */
export class AssemblyDeniedError extends AssemblyError {
  readonly reason: string;
  readonly policy: string | undefined;
  readonly conditions: ConditionResult[];
  readonly approvalId: string | undefined;
  readonly auditEventId: string | undefined;

  constructor(init: {
    reason: string;
    message: string;
    policy?: string;
    conditions?: ConditionResult[];
    approvalId?: string;
    auditEventId?: string;
  }) {
    super("ACTION_DENIED", init.message, {
      reason: init.reason,
      policy: init.policy,
      conditions: init.conditions ?? [],
      approvalId: init.approvalId,
      auditEventId: init.auditEventId,
    });
    this.name = "AssemblyDeniedError";
    this.reason = init.reason;
    this.policy = init.policy;
    this.conditions = init.conditions ?? [];
    this.approvalId = init.approvalId;
    this.auditEventId = init.auditEventId;
  }
}

/** A call held for approval was not decided in time. */
export class AssemblyTimeoutError extends AssemblyError {
  readonly approvalId: string;

  constructor(approvalId: string, message?: string) {
    super("APPROVAL_TIMEOUT", message ?? `approval ${approvalId} was not decided in time`, { approvalId });
    this.name = "AssemblyTimeoutError";
    this.approvalId = approvalId;
  }
}
