/**
 * What the gate's answers mean for a caller: the errors a denial becomes, and the wait for a held
 * action. Shared by the interceptor (tool calls) and the governance client (`gate()`).
 */
import type { ActionResult } from "@aa/engine";
import { AssemblyDeniedError, AssemblyTimeoutError } from "./errors.js";
import type { Gate } from "./internal-types.js";

/** Default wait for a held call (spec: 8 h for `gate()`). */
export const DEFAULT_APPROVAL_WAIT_MS = 8 * 60 * 60 * 1000;

/**
 * Wait until the held action is decided, then release it exactly once. Resolves to the `executed`
 * result of the release; throws `AssemblyDeniedError` (reviewer denial, or a release the gate
 * refused) or `AssemblyTimeoutError` (not decided in time, or expired).
 */
export async function awaitRelease(
  gate: Gate,
  held: ActionResult & { approvalId: string },
  actor: { agentId: string; delegationToken?: string },
  subject: string,
  timeoutMs: number,
  pollIntervalMs?: number,
): Promise<ActionResult> {
  const { approvalId } = held;
  const approval = await gate.awaitApproval(
    approvalId,
    pollIntervalMs === undefined ? { timeoutMs } : { timeoutMs, pollIntervalMs },
  );
  if (approval.state === "approved") {
    const released = await gate.releaseApproval(approvalId, actor.agentId, actor.delegationToken);
    if (released.status !== "executed") throw deniedError(released, { toolName: subject });
    return released;
  }
  if (approval.state === "denied") {
    throw new AssemblyDeniedError({
      reason: "DENIED_BY_REVIEWER",
      policy: held.policyName,
      approvalId,
      auditEventId: held.auditEventId,
      conditions: held.conditionsEvaluated,
      message: `Agent Assembly: "${subject}" was denied by reviewer ${approval.decidedBy ?? "(unknown)"}${
        approval.reason ? `: ${approval.reason}` : ""
      } (DENIED_BY_REVIEWER, approval ${approvalId})`,
    });
  }
  throw new AssemblyTimeoutError(
    approvalId,
    `Agent Assembly: "${subject}" was held for approval ${approvalId} and not approved in time (${approval.state})`,
  );
}

/** The denial the caller (or the model) reads: the policy and each failed condition, expected vs actual. */
export function deniedError(result: ActionResult, call: { toolName: string }): AssemblyDeniedError {
  const reason = result.denialReason ?? "CONDITIONS_DENIED";
  return new AssemblyDeniedError({
    reason,
    policy: result.policyName,
    conditions: result.conditionsEvaluated,
    approvalId: result.approvalId,
    auditEventId: result.auditEventId || undefined,
    message: describeDenial(result, call.toolName),
  });
}

/** One readable paragraph for people and models. */
export function describeDenial(result: ActionResult, toolName: string): string {
  const reason = result.denialReason ?? "CONDITIONS_DENIED";
  const parts = [`Agent Assembly denied tool "${toolName}" (${reason})`];
  if (result.policyName) parts.push(`by policy "${result.policyName}"`);
  let text = parts.join(" ");
  const failed = result.conditionsEvaluated.filter((c) => !c.result);
  if (failed.length > 0) {
    text += `. Failed conditions: ${failed
      .map(
        (c) =>
          `${c.field} ${c.operator} ${JSON.stringify(c.expected)} (actual: ${JSON.stringify(c.actual) ?? "missing"})`,
      )
      .join("; ")}`;
  } else if (reason === "NO_MATCHING_POLICY") {
    text += `. No policy allows the action "${toolName}"; nothing was run`;
  } else if (result.message) {
    text += `. ${result.message}`;
  }
  return `${text}.`;
}

/** What a governance error carries that an adapter's answer needs (AssemblyDeniedError / AssemblyTimeoutError). */
export interface GovernanceErrorLike {
  readonly code: string;
  readonly message: string;
  readonly reason?: string;
  readonly policy?: string;
  readonly conditions?: unknown;
  readonly approvalId?: string;
  readonly auditEventId?: string;
}

const GOVERNANCE_ERROR_NAMES = new Set(["AssemblyDeniedError", "AssemblyTimeoutError"]);

/**
 * Errors meant for the caller: a denial or an approval timeout. Recognised by name and code rather
 * than `instanceof` so that a second copy of `@aa/core` in the host cannot hide them. Adapters use it
 * to turn these (and only these) into the framework's own denial shape.
 */
export function isGovernanceError(error: unknown): error is Error & GovernanceErrorLike {
  return (
    error instanceof Error &&
    GOVERNANCE_ERROR_NAMES.has(error.name) &&
    typeof (error as { code?: unknown }).code === "string"
  );
}

/** The text a model reads for a denied call: the error's message, with the reason code in it. */
export function denialText(error: GovernanceErrorLike): string {
  const reason = error.reason ?? error.code;
  return error.message.includes(reason) ? error.message : `${reason}: ${error.message}`;
}
