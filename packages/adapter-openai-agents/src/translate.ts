/**
 * Translation between the OpenAI Agents SDK's function-tool calls and the gate: an SDK call becomes a
 * `ToolCall`; a governance error becomes the text the model reads as the tool's result.
 */
import type { ToolCall } from "@aa/core";
import { denialText, type GovernanceErrorLike, isGovernanceError } from "@aa/core";

/** Re-exported for callers of this package (they live in @aa/core, shared by every adapter). */
export { denialText, type GovernanceErrorLike, isGovernanceError };

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
