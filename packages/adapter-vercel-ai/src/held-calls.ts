/**
 * Calls this process answered with `user-approval`, by tool-call id: the idempotency key of their
 * gate decision (so the resumed run finds the same decision and the same approval) and, when the
 * gate held the call, its approval id (so the app can answer the gate consistently).
 */
import { ConfigurationError } from "@aa/core";
import { BoundedMemo } from "@aa/core/adapter-kit";

export interface RememberedCall {
  readonly eventId: string;
  readonly approvalId?: string;
}

/** Bounded: the oldest entries go first (a run never resumed must not grow the process). */
const LIMIT = 10_000;
const remembered = new BoundedMemo<string, RememberedCall>(LIMIT);

export function rememberCall(toolCallId: string, entry: RememberedCall): void {
  // Delete first: a call remembered again becomes the newest.
  remembered.delete(toolCallId);
  remembered.set(toolCallId, entry);
}

export function recallCall(toolCallId: string): RememberedCall | undefined {
  return remembered.get(toolCallId);
}

/**
 * The gate's approval id for a tool call the gate held (the SDK's `tool-approval-request` carries
 * the tool call: `request.toolCall.toolCallId`); undefined when the gate did not hold it in this process.
 */
export function gateApprovalIdFor(toolCallId: string): string | undefined {
  return remembered.get(toolCallId)?.approvalId;
}

/** The part of `AssemblyContext` the helper needs. */
export interface ApprovalAnswerer {
  approve(approvalId: string, reviewer: string, reason?: string): Promise<unknown>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<unknown>;
}

/** The app's answer to a `tool-approval-request`, as it also sends it to the SDK. */
export interface GateApprovalAnswer {
  /** The held tool call (`request.toolCall.toolCallId`); or give the gate's `approvalId`. */
  toolCallId?: string;
  /** The gate's approval id (shown in the request's `reason`); or give `toolCallId`. */
  approvalId?: string;
  approved: boolean;
  /** Who decided: the person who answered. Never the agent itself (the gate refuses self-approval). */
  reviewer: string;
  reason?: string;
}

/**
 * Answer the gate's approval the same way the app answers the SDK's `tool-approval-request`, so
 * both agree: an approved call runs on resume, a refused one is denied at the gate too (and does not
 * stay pending). Returns the gate's updated approval. Calls the gate was not holding (the request
 * came from the app's own `toolApproval` or `needsApproval`) need no answer: returns undefined.
 *
 * @throws ConfigurationError when the answer is malformed.
 */
export async function answerGateApproval(
  assembly: ApprovalAnswerer,
  answer: GateApprovalAnswer,
): Promise<unknown> {
  if (typeof answer !== "object" || answer === null) {
    throw new ConfigurationError("answer", "answerGateApproval: the answer must be an object");
  }
  if (typeof answer.approved !== "boolean") {
    throw new ConfigurationError("approved", 'answerGateApproval: "approved" must be true or false');
  }
  if (typeof answer.reviewer !== "string" || answer.reviewer.trim() === "") {
    throw new ConfigurationError(
      "reviewer",
      'answerGateApproval: "reviewer" must name the person who answered (the agent may not approve itself)',
    );
  }
  if (answer.approvalId !== undefined && typeof answer.approvalId !== "string") {
    throw new ConfigurationError("approvalId", 'answerGateApproval: "approvalId" must be a string');
  }
  if (answer.toolCallId !== undefined && typeof answer.toolCallId !== "string") {
    throw new ConfigurationError("toolCallId", 'answerGateApproval: "toolCallId" must be a string');
  }
  if (answer.approvalId === undefined && answer.toolCallId === undefined) {
    throw new ConfigurationError(
      "toolCallId",
      'answerGateApproval: give "toolCallId" (request.toolCall.toolCallId) or the gate\'s "approvalId"',
    );
  }
  const approvalId = answer.approvalId ?? gateApprovalIdFor(answer.toolCallId as string);
  if (approvalId === undefined) return undefined;
  return answer.approved
    ? assembly.approve(approvalId, answer.reviewer, answer.reason)
    : assembly.deny(approvalId, answer.reviewer, answer.reason);
}
