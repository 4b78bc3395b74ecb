/** Errors shared by the stores when a conditional effect does not apply. */
import { EngineError } from "../errors.js";
import type { ApprovalRow, StoreEffect } from "./types.js";

/** Why a conditional effect cannot apply to `current`, or undefined when it can. */
export function effectConflict(
  effect: StoreEffect,
  current: ApprovalRow | undefined,
): EngineError | undefined {
  if (effect.type === "approval.transition") {
    if (!current) return approvalNotFound(effect.approvalId);
    if (current.state !== "pending") {
      return new EngineError(
        "APPROVAL_NOT_PENDING",
        409,
        `Approval ${effect.approvalId} is already ${current.state}; only a pending approval can be ${effect.to}`,
        { approvalId: effect.approvalId, state: current.state },
      );
    }
  } else if (effect.type === "approval.consume") {
    if (!current) return approvalNotFound(effect.approvalId);
    if (current.consumedAt !== null) {
      return new EngineError(
        "APPROVAL_ALREADY_USED",
        409,
        `Approval ${effect.approvalId} already released its call at ${current.consumedAt}; an approval releases exactly one call`,
        { approvalId: effect.approvalId, consumedAt: current.consumedAt },
      );
    }
    if (current.state !== "approved") {
      return new EngineError(
        "APPROVAL_NOT_APPROVED",
        409,
        `Approval ${effect.approvalId} is ${current.state}, not approved; it cannot release the call`,
        { approvalId: effect.approvalId, state: current.state },
      );
    }
  }
  return undefined;
}

export function approvalNotFound(id: string): EngineError {
  return new EngineError("APPROVAL_NOT_FOUND", 404, `No approval with id ${id} in this organisation`, {
    approvalId: id,
  });
}

/** The approval an effect targets, if any. */
export function effectApprovalId(effect: StoreEffect): string | undefined {
  return effect.type === "approval.transition" || effect.type === "approval.consume"
    ? effect.approvalId
    : undefined;
}

export function applyEffectToRow(effect: StoreEffect, row: ApprovalRow): ApprovalRow {
  if (effect.type === "approval.transition") {
    return {
      ...row,
      state: effect.to,
      decidedBy: effect.decidedBy,
      reason: effect.reason,
      decidedAt: effect.at,
    };
  }
  if (effect.type === "approval.consume") return { ...row, consumedAt: effect.at };
  return row;
}

/** Another writer committed the same idempotency key first; the engine re-reads and compares. */
export function idempotencyTaken(key: string): EngineError {
  return new EngineError(
    "IDEMPOTENCY_KEY_REUSED",
    422,
    `The idempotency key ${JSON.stringify(key)} is already recorded`,
    {
      eventId: key,
    },
  );
}
