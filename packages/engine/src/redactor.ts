/**
 * Binds the policy's `redact` rules (and the built-in secret detectors) to a call. Rules are
 * rooted at each free-form part of the call separately: `$` is the args object, and the same rules
 * apply to `metadata` and `data_accessed`, so `$..password` catches a password wherever it travels.
 */
import type { PolicyDocument } from "@aa/policy";
import type { HmacKeySet } from "./crypto/secret.js";
import { EngineError } from "./errors.js";
import type { CallRedactor } from "./redact.js";
import { compileRedactor, type Redactor } from "./redaction/index.js";

export function buildRedactor(document: PolicyDocument, hmac: HmacKeySet): CallRedactor {
  let redact: Redactor;
  try {
    redact = compileRedactor(document.redact ?? [], { hmacKey: hmac.activeKey(), detectors: true });
  } catch (cause) {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      `the policy's redact rules are invalid: ${(cause as Error).message}`,
      {
        option: "policy.redact",
      },
      { cause },
    );
  }
  return (call) => {
    const args = call.args === undefined ? undefined : redact(call.args);
    const metadata = call.metadata === undefined ? undefined : redact(call.metadata);
    const data = call.dataAccessed === undefined ? undefined : redact(call.dataAccessed);
    let fired = args?.fired ?? [];
    for (const more of [metadata?.fired, data?.fired]) {
      if (more && more.length > 0) fired = fired.length === 0 ? more : [...new Set([...fired, ...more])];
    }
    return {
      args: args?.value,
      metadata: metadata?.value as Record<string, unknown> | undefined,
      dataAccessed: data?.value,
      fired,
      shared:
        isShared(call.args, args) || isShared(call.metadata, metadata) || isShared(call.dataAccessed, data),
    };
  };
}

/** True when redaction handed back the caller's own (mutable) object instead of a copy. */
function isShared(input: unknown, output: { value: unknown } | undefined): boolean {
  return output !== undefined && output.value === input && typeof input === "object" && input !== null;
}
