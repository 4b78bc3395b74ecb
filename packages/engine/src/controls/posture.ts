/**
 * The governance posture score: 0-100 from four components of 0-25 each, computed over a bounded
 * recent window of the audit chain (the last `POSTURE_WINDOW` records) so it stays cheap, plus the
 * chain's own verification. Definitions are in docs/controls.md; this module is pure arithmetic.
 */
import type { ApprovalRow } from "../store/types.js";
import type { PolicyIntegrity, Posture, PostureComponent, VerifyResult } from "../types.js";

/** How many of the most recent audit records the score looks at. */
export const POSTURE_WINDOW = 10_000;
/** A pending approval older than this counts against approval hygiene. */
export const STALE_APPROVAL_MS = 60 * 60 * 1000;
const FULL = 25;

/** The fields of an audit record the score reads. */
export interface PostureRecord {
  kind: string;
  time: string;
  status: string | null;
  denial_reason: string | null;
  policy_name: string | null;
  mode: string;
}

const round = (value: number) => Math.round(value * 10) / 10;
const percent = (part: number, whole: number) => `${Math.round((part / whole) * 100)}%`;

function component(share: number | undefined, detail: string): PostureComponent {
  return { score: share === undefined ? FULL : round(FULL * share), detail };
}

export function computePosture(
  records: readonly PostureRecord[],
  approvals: readonly ApprovalRow[],
  chain: VerifyResult,
  now: number,
  policyIntegrity: PolicyIntegrity = { state: "intact", policyHash: "" },
): Posture {
  const actions = records.filter((r) => r.kind === "action");
  // Calls the policy evaluated: not stopped before it by a control, not in disabled mode.
  const evaluated = actions.filter(
    (r) =>
      r.mode !== "disabled" &&
      r.denial_reason !== "CIRCUIT_OPEN" &&
      r.denial_reason !== "BUDGET_EXCEEDED" &&
      r.denial_reason !== "POLICY_TAMPERED",
  );
  const covered = evaluated.filter((r) => r.policy_name !== null).length;
  const policyCoverage = component(
    evaluated.length === 0 ? undefined : covered / evaluated.length,
    evaluated.length === 0
      ? "no evaluated actions in the window"
      : `${covered} of ${evaluated.length} evaluated actions (${percent(covered, evaluated.length)}) matched a named policy; the rest fell to the default deny`,
  );

  const since = records.length === 0 ? now : Date.parse(records[0]!.time);
  let decided = 0;
  let expired = 0;
  let stale = 0;
  for (const approval of approvals) {
    if (Date.parse(approval.createdAt) < since) continue;
    if (approval.state === "approved" || approval.state === "denied") decided++;
    else if (approval.state === "expired" || Date.parse(approval.expiresAt) <= now) expired++;
    else if (now - Date.parse(approval.createdAt) > STALE_APPROVAL_MS) stale++;
  }
  const judged = decided + expired + stale;
  const approvalHygiene = component(
    judged === 0 ? undefined : decided / judged,
    judged === 0
      ? "no approvals to judge in the window"
      : `${decided} of ${judged} approvals decided by a reviewer before expiry; ${expired} expired, ${stale} pending for over ${STALE_APPROVAL_MS / 60_000} min`,
  );

  const denied = actions.filter((r) => r.status === "denied").length;
  const controls = actions.filter(
    (r) => r.denial_reason === "CIRCUIT_OPEN" || r.denial_reason === "BUDGET_EXCEEDED",
  ).length;
  const anomalyRate = component(
    actions.length === 0 ? undefined : 1 - denied / actions.length,
    actions.length === 0
      ? "no actions in the window"
      : `${denied} of ${actions.length} actions denied (${percent(denied, actions.length)}), ${controls} of them by the circuit breaker, kill switch or a budget`,
  );

  // A valid chain next to a policy changed behind its back is no integrity: the records no longer
  // say which policy is meant to decide.
  const chainIntegrity: PostureComponent = !chain.chainValid
    ? {
        score: 0,
        detail: `chain broken${chain.firstBrokenAtRowId ? ` at record ${chain.firstBrokenAtRowId}` : ""}${chain.problem ? `: ${chain.problem}` : ""}`,
      }
    : policyIntegrity.state === "tampered"
      ? {
          score: 0,
          detail: `chain verified (${chain.checked} records), but the policy is tampered (stored ${policyIntegrity.storedHash}, recorded ${policyIntegrity.recordedHash ?? "none"}): every call is denied POLICY_TAMPERED`,
        }
      : { score: FULL, detail: `chain verified (${chain.checked} records)` };

  const components = { policyCoverage, approvalHygiene, anomalyRate, chainIntegrity };
  const score = Math.round(
    policyCoverage.score + approvalHygiene.score + anomalyRate.score + chainIntegrity.score,
  );
  return {
    score,
    components,
    policyIntegrity,
    window: {
      records: records.length,
      ...(records.length > 0 ? { from: records[0]!.time, to: records.at(-1)!.time } : {}),
    },
  };
}
