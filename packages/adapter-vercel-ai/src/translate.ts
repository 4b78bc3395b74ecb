/**
 * Translation between the AI SDK's tool-approval shapes and the gate: an SDK tool call becomes a
 * `ToolCall`; the gate's answer becomes a `toolApproval` status (`{type: "denied", reason}` reaches
 * the model as an `execution-denied` tool result).
 */
import type { HeldCall, ToolCall } from "@aa/core";
import { denialText, type GovernanceErrorLike, isGovernanceError } from "@aa/core";

/** Re-exported for callers of this package (they live in @aa/core, shared by every adapter). */
export { denialText, type GovernanceErrorLike, isGovernanceError };

/** Framework name recorded on every call this adapter intercepts. */
export const FRAMEWORK = "vercel-ai";

/** The normalised statuses of the SDK's `ToolApprovalStatus`. */
export type ApprovalStatus =
  | { type: "not-applicable" }
  | { type: "approved"; reason?: string }
  | { type: "denied"; reason?: string }
  | { type: "user-approval"; reason?: string };

/** The parts of the SDK's `TypedToolCall` the translation reads. */
export interface SdkToolCall {
  toolCallId?: unknown;
  toolName?: unknown;
  input?: unknown;
  providerExecuted?: unknown;
  dynamic?: unknown;
  toolMetadata?: unknown;
}

/** Translate the tool call handed to `toolApproval` into the gate's `ToolCall`. */
export function toToolCall(toolCall: SdkToolCall): ToolCall {
  const toolName = nonEmptyString(toolCall.toolName);
  if (toolName === undefined) throw new TypeError("the tool call has no toolName");
  const call: ToolCall = { framework: FRAMEWORK, toolName, args: toolCall.input };
  const toolCallId = nonEmptyString(toolCall.toolCallId);
  if (toolCallId !== undefined) call.toolCallId = toolCallId;
  const metadata: Record<string, unknown> = {};
  copyPlainJsonFields(toolCall.toolMetadata, metadata);
  if (toolCall.dynamic === true) metadata.dynamic = true;
  if (Object.keys(metadata).length > 0) call.metadata = metadata;
  return call;
}

/** The SDK's own normalisation: `undefined` → not-applicable, a string → `{type}`. */
export function normalizeStatus(status: unknown): ApprovalStatus {
  if (status === undefined || status === null) return { type: "not-applicable" };
  if (typeof status === "string") return toStatus(status, undefined);
  if (typeof status === "object") {
    const { type, reason } = status as { type?: unknown; reason?: unknown };
    if (typeof type === "string") return toStatus(type, typeof reason === "string" ? reason : undefined);
  }
  throw new TypeError(`toolApproval returned ${describe(status)}, not a ToolApprovalStatus`);
}

function toStatus(type: string, reason: string | undefined): ApprovalStatus {
  switch (type) {
    case "not-applicable":
      return { type };
    case "approved":
    case "denied":
    case "user-approval":
      return reason === undefined ? { type } : { type, reason };
    default:
      throw new TypeError(`toolApproval returned the unknown status ${JSON.stringify(type)}`);
  }
}

/**
 * Combine the caller's status with the gate's: a denial from either wins (the gate's reason first,
 * so the model reads the failed conditions), then a request for user approval, then the caller's
 * explicit approval; a call both allow is `not-applicable` (it runs without approval parts).
 */
export function composeStatuses(caller: ApprovalStatus, gate: ApprovalStatus): ApprovalStatus {
  if (gate.type === "denied") return gate;
  if (caller.type === "denied") return caller;
  if (gate.type === "user-approval") {
    const reasons = [gate.reason, caller.type === "user-approval" ? caller.reason : undefined].filter(
      (reason): reason is string => reason !== undefined,
    );
    return reasons.length > 0
      ? { type: "user-approval", reason: reasons.join(" ") }
      : { type: "user-approval" };
  }
  if (caller.type === "user-approval" || caller.type === "approved") return caller;
  return gate;
}

/** The reason shown with a `tool-approval-request` when the gate holds the call. */
export function heldText(held: HeldCall, toolName: string): string {
  const expiry = held.timeoutAt ? `, expires ${held.timeoutAt}` : "";
  return (
    `Agent Assembly holds tool "${toolName}" for approval ${held.approvalId}${expiry}. ` +
    `Answer it at the gate too (answerGateApproval(...) or \`aa approvals approve ${held.approvalId}\`).`
  );
}

/**
 * Is this `toolApproval` call the SDK re-checking a call the app approved (a resumed run whose
 * trailing tool message holds an approving `tool-approval-response` for this tool call)?
 */
export function isApprovedResume(messages: unknown, toolCallId: string | undefined): boolean {
  if (toolCallId === undefined || !Array.isArray(messages)) return false;
  const last = messages.at(-1) as { role?: unknown; content?: unknown } | undefined;
  if (last?.role !== "tool" || !Array.isArray(last.content)) return false;
  const approvedIds = new Set<unknown>();
  for (const part of last.content as Array<Record<string, unknown>>) {
    if (part?.type === "tool-approval-response" && part.approved === true) approvedIds.add(part.approvalId);
  }
  if (approvedIds.size === 0) return false;
  for (const message of messages as Array<{ role?: unknown; content?: unknown }>) {
    if (message?.role !== "assistant" || !Array.isArray(message.content)) continue;
    for (const part of message.content as Array<Record<string, unknown>>) {
      if (
        part?.type === "tool-approval-request" &&
        part.toolCallId === toolCallId &&
        approvedIds.has(part.approvalId)
      ) {
        return true;
      }
    }
  }
  return false;
}

function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? typeof value;
  } catch {
    return typeof value;
  }
}

function copyPlainJsonFields(source: unknown, target: Record<string, unknown>): void {
  if (typeof source !== "object" || source === null || Array.isArray(source)) return;
  for (const [key, value] of Object.entries(source)) {
    if (isPlainJson(value, 0)) target[key] = value;
  }
}

const MAX_JSON_DEPTH = 8;

/** JSON-representable without loss: no functions, class instances, cycles, NaN or undefined. */
function isPlainJson(value: unknown, depth: number): boolean {
  if (value === null || typeof value === "string" || typeof value === "boolean") return true;
  if (typeof value === "number") return Number.isFinite(value);
  if (typeof value !== "object" || depth >= MAX_JSON_DEPTH) return false;
  if (Array.isArray(value)) return value.every((item) => isPlainJson(item, depth + 1));
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.values(value).every((item) => isPlainJson(item, depth + 1));
}
