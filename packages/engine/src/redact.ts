/**
 * The engine's view of redaction: one function that turns a call's free-form values into their
 * redacted form and names the rules that fired. The rules and detectors themselves live in
 * `./redaction/` (compiled from the policy's `redact` section).
 */
export interface RedactedCall {
  args: unknown;
  metadata: Record<string, unknown> | undefined;
  dataAccessed: unknown;
  /** Rule paths / detector names that changed something. Empty when nothing was redacted. */
  fired: string[];
  /**
   * True when `args`, `metadata` or `dataAccessed` is the caller's own object (nothing needed
   * redacting, so it was not copied): the caller may still mutate it, so snapshot before deferring.
   */
  shared: boolean;
}

export type CallRedactor = (call: {
  args: unknown;
  metadata: Record<string, unknown> | undefined;
  dataAccessed: unknown;
}) => RedactedCall;

const NOTHING_FIRED: string[] = [];

/** A redactor that changes nothing (no rules, no detectors). */
export const identityRedactor: CallRedactor = (call) => ({
  args: call.args,
  metadata: call.metadata,
  dataAccessed: call.dataAccessed,
  fired: NOTHING_FIRED,
  shared: true,
});

/** Redacts free text (messages, reasons) with the same redactor, by wrapping it as an argument. */
export function redactText(redactor: CallRedactor, text: string): string {
  const out = redactor({ args: text, metadata: undefined, dataAccessed: undefined });
  return typeof out.args === "string" ? out.args : "[REDACTED]";
}
