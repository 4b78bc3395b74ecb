/** What a policy decision means as an answer: status, the result object, the human message. */
import type { ConditionResult, PolicyDecision } from "@aa/policy";
import { canonicalJson } from "./chain/canonical-json.js";
import type { ActionResult, ActionStatus, DenialReasonCode, EnforcementMode } from "./types.js";

export function decisionStatus(decision: PolicyDecision | undefined): {
  status: ActionStatus;
  denialReason?: DenialReasonCode;
} {
  if (!decision || decision.effect === "allow") return { status: "executed" };
  if (decision.effect === "require_approval") return { status: "requested" };
  return { status: "denied", denialReason: decision.denialReason ?? "CONDITIONS_DENIED" };
}

export function result(
  status: ActionStatus,
  auditEventId: string,
  message: string,
  denialReason: DenialReasonCode | undefined,
  _mode: EnforcementMode,
  policyName: string | undefined,
  policyHash: string,
  conditions: ConditionResult[],
  shadow: ActionResult["shadow"],
): ActionResult {
  const out: ActionResult = { status, auditEventId, message, policyHash, conditionsEvaluated: conditions };
  // Callers pass a reason only when it is enforced: in `enforce` mode, or an operator control's denial.
  if (denialReason) out.denialReason = denialReason;
  if (policyName) out.policyName = policyName;
  if (shadow) out.shadow = shadow;
  return out;
}

/**
 * Condition results whose operands the caller may still mutate (objects and arrays read from its
 * arguments) are copied through their canonical JSON; the usual all-scalar list is returned as is.
 */
export function snapshotConditions(conditions: ConditionResult[]): ConditionResult[] {
  for (const c of conditions) {
    if (
      (c.actual !== null && typeof c.actual === "object") ||
      (c.expected !== null && typeof c.expected === "object")
    ) {
      return conditions.map((item) => JSON.parse(canonicalJson(item)) as ConditionResult);
    }
  }
  return conditions;
}

/** Replaces condition values that redaction changed, so no secret leaves through `actual`. */
export function redactConditions(
  conditions: ConditionResult[],
  redacted: { args: unknown; metadata: unknown; dataAccessed: unknown },
): ConditionResult[] {
  return conditions.map((c) => {
    const root = c.field.split(".")[0];
    const source =
      root === "args"
        ? redacted.args
        : root === "metadata"
          ? redacted.metadata
          : root === "data_accessed"
            ? redacted.dataAccessed
            : undefined;
    if (source === undefined) return c;
    const path = c.field.split(".").slice(1);
    let value: unknown = source;
    for (const key of path)
      value =
        value !== null && typeof value === "object" ? (value as Record<string, unknown>)[key] : undefined;
    return value === c.actual ? c : { ...c, actual: value };
  });
}

export function describeDecision(
  decision: PolicyDecision,
  conditions: ConditionResult[],
  actionType: string,
): string {
  const name = decision.policyName ? `policy "${decision.policyName}"` : "no policy";
  if (decision.effect === "deny" && decision.denialReason === "NO_MATCHING_POLICY") {
    return `No policy matches action "${actionType}"; the default is deny`;
  }
  const failed = conditions.filter((c) => !c.result);
  const why = failed.map(
    (c) =>
      `${c.field} ${c.operator} ${JSON.stringify(c.expected)} failed (actual ${JSON.stringify(c.actual)})`,
  );
  const verb =
    decision.effect === "allow"
      ? "Allowed by"
      : decision.effect === "deny"
        ? "Denied by"
        : "Held for approval by";
  return why.length > 0 ? `${verb} ${name}: ${why.join("; ")}` : `${verb} ${name}`;
}
