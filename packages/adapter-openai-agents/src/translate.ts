/**
 * Translation between the OpenAI Agents SDK's function-tool calls and the gate: an SDK call becomes a
 * `ToolCall`; a governance error becomes the text the model reads as the tool's result.
 */
import type { ToolCall } from "@aa/core";

/** Framework name recorded on every call this adapter intercepts. */
export const FRAMEWORK = "openai-agents";

/**
 * The idempotency key of one model tool call. The approval check (`needsApproval`) and the input
 * guardrail of the same call share it, so the gate decides (and audits) the call once and the
 * guardrail replays that decision.
 */
export function eventIdFor(toolName: string, callId: string): string {
  return `${FRAMEWORK}:${toolName}:${callId}`;
}

/** Translate one SDK function-tool call (tool name, arguments, the model's call id). */
export function toToolCall(toolName: unknown, args: unknown, callId: unknown): ToolCall {
  if (typeof toolName !== "string" || toolName === "") throw new TypeError("the function tool has no name");
  if (typeof callId !== "string" || callId === "") {
    throw new TypeError(`the call of function tool "${toolName}" has no call id`);
  }
  return { framework: FRAMEWORK, toolName, args, toolCallId: callId };
}

/**
 * The arguments of a `function_call` item as the model sent them: parsed JSON, or the raw string
 * when it is not JSON (the SDK then fails the call itself; the gate still sees what was asked).
 */
export function parseArguments(raw: unknown): unknown {
  if (typeof raw !== "string") return raw;
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

/** What a governance error carries (AssemblyDeniedError / AssemblyTimeoutError). */
export interface GovernanceErrorLike {
  readonly code: string;
  readonly message: string;
  readonly reason?: string;
  readonly policy?: string;
  readonly approvalId?: string;
}

const GOVERNANCE_ERROR_NAMES = new Set(["AssemblyDeniedError", "AssemblyTimeoutError"]);

/**
 * Errors meant for the caller: a denial or an approval timeout. Recognised by name and code rather
 * than `instanceof` so that a second copy of `@aa/core` in the host cannot hide them.
 */
export function isGovernanceError(error: unknown): error is Error & GovernanceErrorLike {
  return (
    error instanceof Error &&
    GOVERNANCE_ERROR_NAMES.has(error.name) &&
    typeof (error as { code?: unknown }).code === "string"
  );
}

/** The text the model reads for a denied call: the error message, with the reason code in it. */
export function denialText(error: GovernanceErrorLike): string {
  const reason = error.reason ?? error.code;
  return error.message.includes(reason) ? error.message : `${reason}: ${error.message}`;
}
