/** Errors shared by the stores when a conditional effect does not apply. */
import { EngineError } from "../errors.js";
import type { ApprovalRow, DelegationRow, StoreEffect } from "./types.js";

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

/** What a store reads before applying a delegation effect (inside its write transaction). */
export interface DelegationEffectState {
  /** For `delegation.revoke` / `delegation.expire`: the targeted row. */
  current?: DelegationRow;
  /** For `delegation.insert`: an active delegation of the same child agent id, if any. */
  activeSameChild?: DelegationRow;
  /** For `delegation.insert` with a parent delegation: that parent. */
  parent?: DelegationRow;
}

/** Why a delegation effect cannot apply, or undefined when it can. */
export function delegationConflict(
  effect: Extract<StoreEffect, { type: `delegation.${string}` }>,
  state: DelegationEffectState,
): EngineError | undefined {
  if (effect.type === "delegation.insert") {
    const row = effect.delegation;
    if (state.activeSameChild) {
      return new EngineError(
        "DELEGATION_EXISTS",
        409,
        `${row.childAgentId} already has an active delegation (${state.activeSameChild.id}, until ${state.activeSameChild.expiresAt}); revoke it or choose another name`,
        { agentId: row.childAgentId, delegationId: state.activeSameChild.id },
      );
    }
    if (row.parentDelegationId !== null && (!state.parent || state.parent.revokedAt !== null)) {
      return new EngineError(
        "DELEGATION_REVOKED",
        403,
        `The parent delegation ${row.parentDelegationId} was revoked; ${row.parentAgentId} can no longer delegate`,
        { delegationId: row.parentDelegationId },
      );
    }
    return undefined;
  }
  const current = state.current;
  if (!current) return delegationNotFound(effect.delegationId);
  if (current.revokedAt !== null || (effect.type === "delegation.expire" && current.expiredAt !== null)) {
    return new EngineError(
      "DELEGATION_NOT_ACTIVE",
      409,
      `Delegation ${effect.delegationId} is already ${current.revokedAt !== null ? `revoked (at ${current.revokedAt})` : `expired (at ${current.expiresAt})`}`,
      { delegationId: effect.delegationId },
    );
  }
  return undefined;
}

export function delegationNotFound(id: string): EngineError {
  return new EngineError("DELEGATION_NOT_FOUND", 404, `No delegation with id ${id} in this organisation`, {
    delegationId: id,
  });
}
