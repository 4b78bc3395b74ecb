/**
 * How a reviewer's decision on a held call reaches both the gate and the SDK run.
 *
 * A call the policy holds (`require_approval`) becomes an SDK interruption: the run returns
 * `result.interruptions`. The gate's approval record stays pending until a reviewer decides it; the
 * adapter never approves on the agent's behalf. The app records its reviewer's decision with
 * {@link approveInterruption} / {@link rejectInterruption}, which decide the gate's approval and the
 * SDK interruption together; then `runner.run(agent, state)` resumes.
 */
import { BoundedMemo } from "@aa/core/adapter-kit";
import { eventIdFor } from "./translate.js";

/** How many held calls are remembered (call → gate approval id) in this process. */
const HELD_LIMIT = 10_000;
const heldApprovals = new BoundedMemo<string, string>(HELD_LIMIT);

/** Remember the gate approval that holds a call (keyed by the call's idempotency key). */
export function rememberHeld(eventId: string, approvalId: string): void {
  heldApprovals.set(eventId, approvalId);
}

/** The parts of an SDK `RunToolApprovalItem` (an interruption) the helpers read. */
export interface InterruptionLike {
  readonly rawItem: { readonly type?: string; readonly callId?: string; readonly name?: string };
  readonly name?: string;
}

/** The parts of an SDK `RunState` the helpers use. */
export interface RunStateLike<Item> {
  approve(item: Item, options?: { alwaysApprove?: boolean }): void;
  reject(item: Item, options?: { alwaysReject?: boolean; message?: string }): void;
}

/** The parts of an `AssemblyContext` (or a governance client) the helpers use. */
export interface ReviewerGate {
  approve(approvalId: string, reviewer: string, reason?: string): Promise<unknown>;
  deny(approvalId: string, reviewer: string, reason?: string): Promise<unknown>;
  audit(query?: { cursor?: string; limit?: number; actionType?: string }): Promise<{
    items: readonly { kind?: string; tool_call_id?: string | null; approval_id?: string | null }[];
    nextCursor?: string;
  }>;
}

/** What a helper did: the gate approval it decided, if the call was held by the gate. */
export interface ReviewOutcome {
  /** The gate approval decided; undefined when the interruption came from the tool's own `needsApproval`. */
  approvalId?: string;
}

/**
 * The gate approval that holds this interruption's call, or undefined when the gate did not hold it
 * (the tool's own `needsApproval` asked). Looks in this process first, then in the audit trail
 * (a run resumed in another process).
 */
export async function gateApprovalFor(
  assembly: ReviewerGate,
  interruption: InterruptionLike,
): Promise<string | undefined> {
  const { callId, toolName } = describeInterruption(interruption);
  const known = heldApprovals.get(eventIdFor(toolName, callId));
  if (known !== undefined) return known;
  let cursor: string | undefined;
  do {
    const page = await assembly.audit({ actionType: toolName, limit: 500, ...(cursor ? { cursor } : {}) });
    const record = page.items.find(
      (item) =>
        item.kind === "action" && item.tool_call_id === callId && typeof item.approval_id === "string",
    );
    if (record?.approval_id) return record.approval_id;
    cursor = page.nextCursor;
  } while (cursor !== undefined);
  return undefined;
}

/**
 * A reviewer approves a held call: the gate's approval is approved as `reviewer` (audited), then the
 * SDK interruption is approved. Resume with `runner.run(agent, state)`; the call runs once.
 */
export async function approveInterruption<Item extends InterruptionLike>(
  assembly: ReviewerGate,
  state: RunStateLike<Item>,
  interruption: Item,
  reviewer: string,
  reason?: string,
): Promise<ReviewOutcome> {
  requireReviewer(reviewer);
  const approvalId = await gateApprovalFor(assembly, interruption);
  if (approvalId !== undefined) await assembly.approve(approvalId, reviewer, reason);
  state.approve(interruption);
  return approvalId === undefined ? {} : { approvalId };
}

/**
 * A reviewer refuses a held call: the gate's approval is denied as `reviewer` (audited), then the
 * SDK interruption is rejected with a message the model reads (reviewer, reason, approval id).
 */
export async function rejectInterruption<Item extends InterruptionLike>(
  assembly: ReviewerGate,
  state: RunStateLike<Item>,
  interruption: Item,
  reviewer: string,
  reason?: string,
): Promise<ReviewOutcome> {
  requireReviewer(reviewer);
  const { toolName } = describeInterruption(interruption);
  const approvalId = await gateApprovalFor(assembly, interruption);
  if (approvalId !== undefined) await assembly.deny(approvalId, reviewer, reason);
  const message = `Agent Assembly: "${toolName}" was denied by reviewer ${reviewer}${reason ? `: ${reason}` : ""} (DENIED_BY_REVIEWER${
    approvalId ? `, approval ${approvalId}` : ""
  })`;
  state.reject(interruption, { message });
  return approvalId === undefined ? {} : { approvalId };
}

function describeInterruption(interruption: InterruptionLike): { callId: string; toolName: string } {
  const raw = interruption?.rawItem;
  const toolName = interruption?.name ?? raw?.name;
  if (raw?.type !== "function_call" || typeof raw.callId !== "string" || typeof toolName !== "string") {
    throw new TypeError(
      'expected an interruption of a function tool call (an item of result.interruptions with rawItem.type "function_call")',
    );
  }
  return { callId: raw.callId, toolName };
}

function requireReviewer(reviewer: unknown): void {
  if (typeof reviewer !== "string" || reviewer.trim() === "") {
    throw new TypeError("reviewer must be a non-empty string naming the person who decided");
  }
}
