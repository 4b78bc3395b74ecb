/** Stored rows as the public shapes callers see (audit events, approvals) and audit cursors. */
import { invalid } from "./errors.js";
import type { ApprovalRow, StoredEvent } from "./store/types.js";
import type { Approval, AuditEvent, Outcome } from "./types.js";

export function toApproval(row: ApprovalRow): Approval {
  const out: Approval = {
    id: row.id,
    agentId: row.agentId,
    actionType: row.actionType,
    state: row.state,
    createdAt: row.createdAt,
    expiresAt: row.expiresAt,
    auditEventId: row.auditEventId,
  };
  if (row.policyName) out.policyName = row.policyName;
  if (row.decidedBy) out.decidedBy = row.decidedBy;
  if (row.reason) out.reason = row.reason;
  if (row.decidedAt) out.decidedAt = row.decidedAt;
  if (row.consumedAt) out.consumedAt = row.consumedAt;
  return out;
}

export function toAuditEvent(
  row: StoredEvent,
  outcome: { status: string; message: string | null; metadata: string | null; updatedAt: string } | undefined,
): AuditEvent {
  const record = JSON.parse(row.text) as AuditEvent;
  record.hash = row.hash;
  if (outcome) {
    record.outcome = {
      status: outcome.status as Outcome["status"],
      ...(outcome.message !== null ? { message: outcome.message } : {}),
      ...(outcome.metadata !== null ? { metadata: JSON.parse(outcome.metadata) } : {}),
      updatedAt: outcome.updatedAt,
    };
  }
  return record;
}

/**
 * Which way an audit page reads the chain. An ascending cursor means "after seq" and a descending
 * one "before seq"; each carries its own prefix so that a cursor is never read the wrong way.
 */
export type AuditOrder = "asc" | "desc";

const CURSOR_PREFIX: Record<AuditOrder, string> = { asc: "s:", desc: "b:" };

export function encodeCursor(seq: number, order: AuditOrder = "asc"): string {
  return Buffer.from(`${CURSOR_PREFIX[order]}${seq}`).toString("base64url");
}

/** The seq a cursor continues from (after it for `asc`, before it for `desc`). */
export function decodeCursor(cursor: string, order: AuditOrder = "asc"): number {
  const text = typeof cursor === "string" ? Buffer.from(cursor, "base64url").toString() : "";
  const other: AuditOrder = order === "asc" ? "desc" : "asc";
  if (text.startsWith(CURSOR_PREFIX[other]) && Number.isSafeInteger(Number(text.slice(2)))) {
    throw invalid(
      `cursor continues an order "${other}" read; pass order "${other}" with it, or start an order "${order}" read without a cursor`,
      { field: "cursor" },
    );
  }
  const prefix = CURSOR_PREFIX[order];
  const seq = text.startsWith(prefix) ? Number(text.slice(2)) : Number.NaN;
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw invalid("cursor is not one returned by audit(); pass nextCursor unchanged", { field: "cursor" });
  }
  return seq;
}
