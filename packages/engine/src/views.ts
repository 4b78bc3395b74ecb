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

export function encodeCursor(seq: number): string {
  return Buffer.from(`s:${seq}`).toString("base64url");
}

export function decodeCursor(cursor: string): number {
  const text = typeof cursor === "string" ? Buffer.from(cursor, "base64url").toString() : "";
  const seq = text.startsWith("s:") ? Number(text.slice(2)) : Number.NaN;
  if (!Number.isSafeInteger(seq) || seq < 0) {
    throw invalid("cursor is not one returned by audit(); pass nextCursor unchanged", { field: "cursor" });
  }
  return seq;
}
