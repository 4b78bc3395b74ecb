import { parseDuration } from "./duration.js";
import { compileFieldLookup, type Lookup, MISSING } from "./fields.js";
import { deepFreeze } from "./freeze.js";
import { type ActionGlob, compileActionGlob } from "./glob.js";
import { hashPolicyDocument } from "./hash.js";
import { type ConditionTest, compileConditionTest, HOLDS, UNDECIDED } from "./operators.js";
import type {
  CompiledPolicy,
  Condition,
  ConditionResult,
  Effect,
  EvaluationInput,
  Operator,
  PolicyDecision,
  PolicyDocument,
  PolicyRule,
} from "./types.js";
import { MAX_PREVIEW_STRING, safelyFormatValue, safelyPreviewValue } from "./values.js";

/** Longest action type evaluated; longer ones are denied (they are not action names). */
export const MAX_ACTION_TYPE_LENGTH = 1024;
/** Distinct action types whose matching rules are remembered; past this the memo starts over. */
const MATCH_MEMO_LIMIT = 4096;

interface CompiledCondition {
  readonly field: string;
  readonly operator: Operator;
  readonly expected: unknown;
  readonly lookup: Lookup;
  readonly test: ConditionTest;
  /** Text for messages, e.g. `metadata.pr_size lt 50`. */
  readonly label: string;
}

interface CompiledRule {
  readonly name: string;
  readonly order: number;
  readonly effect: Effect;
  /** What applies when a condition fails; undefined means the rule does not apply. */
  readonly otherwise: "deny" | "require_approval" | undefined;
  /** How an UNDECIDED condition resolves: false in allow rules, true in deny / require_approval rules. */
  readonly undecidedHolds: boolean;
  readonly conditions: readonly CompiledCondition[];
  readonly approvalTimeoutMs: number | undefined;
  readonly quotedName: string;
  /** `required_scopes` as `user.scopes has_scope <scope>` conditions; a failing one denies. */
  readonly scopeConditions: readonly CompiledCondition[];
  /** The rule cannot be decided without a user (`required_scopes`, or a `user.*` condition other than `exists`). */
  readonly requiresUser: boolean;
  /** Scope conditions then `when` conditions: the order their results are reported in. */
  readonly reported: readonly CompiledCondition[];
}

interface RuleMatch {
  readonly rules: readonly CompiledRule[];
  readonly names: readonly string[];
}

interface Verdict {
  rule: CompiledRule;
  /** Index range of this rule's conditions in `conditionsEvaluated`. */
  from: number;
  to: number;
  viaOtherwise: boolean;
}

function compileCondition(condition: Condition): CompiledCondition {
  const hasValue = condition.value !== undefined;
  return {
    field: condition.field,
    operator: condition.op,
    expected: condition.op === "exists" && !hasValue ? true : condition.value,
    lookup: compileFieldLookup(condition.field),
    test: compileConditionTest(condition),
    label:
      condition.op === "exists"
        ? `${condition.field} exists${condition.value === false ? " false" : ""}`
        : `${condition.field} ${condition.op} ${safelyFormatValue(condition.value)}`,
  };
}

const isUserField = (field: string) => field === "user" || field.startsWith("user.");

function compileRule(rule: PolicyRule, order: number): CompiledRule {
  const conditions = (rule.when ?? []).map(compileCondition);
  const scopeConditions = (rule.required_scopes ?? []).map((scope) =>
    compileCondition({ field: "user.scopes", op: "has_scope", value: scope }),
  );
  return {
    name: rule.name,
    order,
    effect: rule.effect,
    otherwise: rule.otherwise ?? (rule.effect === "allow" ? "deny" : undefined),
    undecidedHolds: rule.effect !== "allow",
    conditions,
    approvalTimeoutMs:
      rule.approval?.timeout === undefined ? undefined : parseDuration(rule.approval.timeout),
    quotedName: JSON.stringify(rule.name),
    scopeConditions,
    reported: [...scopeConditions, ...conditions],
    requiresUser:
      scopeConditions.length > 0 ||
      (rule.when ?? []).some((condition) => condition.op !== "exists" && isUserField(condition.field)),
  };
}

/** A user is known when `user` is an object with a non-empty string `id`. */
function hasUser(input: EvaluationInput): boolean {
  const user = Object.hasOwn(input, "user") ? input.user : undefined;
  return typeof user === "object" && user !== null && typeof user.id === "string" && user.id !== "";
}

function previewActual(actual: unknown): unknown {
  if (actual === MISSING) return undefined;
  if (typeof actual === "string")
    return actual.length <= MAX_PREVIEW_STRING ? actual : safelyPreviewValue(actual);
  if (typeof actual === "number")
    return Number.isFinite(actual) && !Object.is(actual, -0) ? actual : safelyPreviewValue(actual);
  if (typeof actual === "boolean" || actual === null) return actual;
  return safelyPreviewValue(actual);
}

function describeCondition(condition: CompiledCondition, result: ConditionResult, verb: string): string {
  const actual = result.actual === undefined ? "missing" : safelyFormatValue(result.actual);
  return `${condition.label} ${verb} (actual ${actual})`;
}

function explain(verdict: Verdict, conditions: ConditionResult[], lead: string): string {
  const { rule, from, to, viaOtherwise } = verdict;
  const parts: string[] = [];
  for (let i = from; i < to; i++) {
    const result = conditions[i] as ConditionResult;
    const condition = rule.reported[i - from] as CompiledCondition;
    if (viaOtherwise && !result.result) parts.push(describeCondition(condition, result, "failed"));
    else if (!viaOtherwise) parts.push(describeCondition(condition, result, "matched"));
  }
  return parts.length === 0
    ? `${lead} by policy ${rule.quotedName}`
    : `${lead} by policy ${rule.quotedName}: ${parts.join("; ")}`;
}

function safelyDescribeError(error: unknown): string {
  try {
    const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    return text.length > MAX_PREVIEW_STRING ? `${text.slice(0, MAX_PREVIEW_STRING)}…` : text;
  } catch {
    return "unreadable error";
  }
}

/**
 * Compiles a validated policy document to an evaluator. Rules are indexed by exact action type and by the
 * literal prefix of their globs, and the rules matching each action type are memoised, so an evaluation
 * touches only the policies that match.
 */
export function compilePolicy(given: PolicyDocument): CompiledPolicy {
  // Compiled from a frozen copy and frozen itself: whoever keeps a reference to the document (or
  // to the result) cannot change what is enforced under the hash computed here.
  const document = deepFreeze(JSON.parse(JSON.stringify(given)) as PolicyDocument);
  const sorted = [...document.policies].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const rules = sorted.map(compileRule);
  const exactIndex = new Map<string, CompiledRule[]>();
  const globRules: { rule: CompiledRule; glob: ActionGlob }[] = [];
  sorted.forEach((policy, order) => {
    const rule = rules[order] as CompiledRule;
    const actions = Array.isArray(policy.action) ? policy.action : [policy.action];
    for (const action of new Set(actions)) {
      const glob = compileActionGlob(action);
      if (glob.isExact) {
        const bucket = exactIndex.get(action) ?? [];
        if (!bucket.includes(rule)) bucket.push(rule);
        exactIndex.set(action, bucket);
      } else {
        globRules.push({ rule, glob });
      }
    }
  });

  const memo = new Map<string, RuleMatch>();
  const findMatches = (actionType: string): RuleMatch => {
    const known = memo.get(actionType);
    if (known !== undefined) return known;
    const matched = new Set<CompiledRule>(exactIndex.get(actionType));
    for (const { rule, glob } of globRules) {
      if (!matched.has(rule) && actionType.startsWith(glob.literalPrefix) && glob.test(actionType))
        matched.add(rule);
    }
    const ordered = [...matched].sort((a, b) => a.order - b.order);
    const match: RuleMatch = { rules: ordered, names: ordered.map((rule) => rule.name) };
    if (memo.size >= MATCH_MEMO_LIMIT) memo.clear();
    memo.set(actionType, match);
    return match;
  };

  const evaluateUnsafely = (input: EvaluationInput): PolicyDecision => {
    if (typeof input !== "object" || input === null)
      throw new TypeError("the evaluation input must be an object");
    const actionType: unknown = input.actionType;
    if (
      typeof actionType !== "string" ||
      actionType.length === 0 ||
      actionType.length > MAX_ACTION_TYPE_LENGTH
    ) {
      throw new TypeError(
        `actionType must be a non-empty string of at most ${MAX_ACTION_TYPE_LENGTH} characters`,
      );
    }
    const match = findMatches(actionType);
    const matchedPolicies = match.names.slice();
    const conditionsEvaluated: ConditionResult[] = [];
    if (match.rules.length === 0) {
      return {
        effect: "deny",
        denialReason: "NO_MATCHING_POLICY",
        conditionsEvaluated,
        matchedPolicies,
        message: `denied: no policy matches action ${safelyFormatValue(actionType)} (default deny)`,
      };
    }
    let deny: Verdict | undefined;
    let approval: Verdict | undefined;
    let allow: Verdict | undefined;
    let unauthenticated: Verdict | undefined;
    const userKnown = hasUser(input);
    for (const rule of match.rules) {
      const from = conditionsEvaluated.length;
      if (rule.requiresUser && !userKnown) {
        // Undecidable without a user: record why, and deny (fail closed) whatever the rule's effect.
        conditionsEvaluated.push({
          policy: rule.name,
          field: "user.id",
          operator: "exists",
          expected: true,
          actual: undefined,
          result: false,
        });
        unauthenticated ??= { rule, from, to: conditionsEvaluated.length, viaOtherwise: true };
        continue;
      }
      let scopesHeld = true;
      for (const condition of rule.scopeConditions) {
        const actual = condition.lookup(input);
        const result = condition.test(actual) === HOLDS;
        if (!result) scopesHeld = false;
        conditionsEvaluated.push({
          policy: rule.name,
          field: condition.field,
          operator: condition.operator,
          expected: condition.expected,
          actual: previewActual(actual),
          result,
        });
      }
      let allHold = true;
      for (const condition of rule.conditions) {
        const actual = condition.lookup(input);
        const outcome = condition.test(actual);
        const result = outcome === UNDECIDED ? rule.undecidedHolds : outcome === HOLDS;
        if (!result) allHold = false;
        conditionsEvaluated.push({
          policy: rule.name,
          field: condition.field,
          operator: condition.operator,
          expected: condition.expected,
          actual: previewActual(actual),
          result,
        });
      }
      // A user lacking a required scope is denied, whatever `otherwise` says: no reviewer grants a scope.
      const effect = !scopesHeld ? "deny" : allHold ? rule.effect : rule.otherwise;
      if (effect === undefined) continue;
      const to = conditionsEvaluated.length;
      // Rules arrive in name order, so the first verdict of each effect is the lowest name.
      if (effect === "deny") deny ??= { rule, from, to, viaOtherwise: !allHold || !scopesHeld };
      else if (effect === "require_approval") approval ??= { rule, from, to, viaOtherwise: !allHold };
      else allow ??= { rule, from, to, viaOtherwise: false };
    }
    if (unauthenticated !== undefined) {
      return {
        effect: "deny",
        denialReason: "UNAUTHENTICATED",
        policyName: unauthenticated.rule.name,
        conditionsEvaluated,
        matchedPolicies,
        message: `denied: policy ${unauthenticated.rule.quotedName} needs the user the call is made for (required_scopes or user.* conditions), and the call names none; call it on behalf of a user (runAs / onBehalfOf)`,
      };
    }
    if (deny !== undefined) {
      return {
        effect: "deny",
        denialReason: "CONDITIONS_DENIED",
        policyName: deny.rule.name,
        conditionsEvaluated,
        matchedPolicies,
        message: explain(deny, conditionsEvaluated, "denied"),
      };
    }
    if (approval !== undefined) {
      const decision: PolicyDecision = {
        effect: "require_approval",
        policyName: approval.rule.name,
        conditionsEvaluated,
        matchedPolicies,
        message: explain(approval, conditionsEvaluated, "approval required"),
      };
      if (approval.rule.approvalTimeoutMs !== undefined)
        decision.approvalTimeoutMs = approval.rule.approvalTimeoutMs;
      return decision;
    }
    if (allow !== undefined) {
      return {
        effect: "allow",
        policyName: allow.rule.name,
        conditionsEvaluated,
        matchedPolicies,
        message: `allowed by policy ${allow.rule.quotedName}`,
      };
    }
    return {
      effect: "deny",
      denialReason: "NO_MATCHING_POLICY",
      conditionsEvaluated,
      matchedPolicies,
      message: `denied: no policy applies to action ${safelyFormatValue(actionType)} (matched ${match.rules
        .map((rule) => rule.quotedName)
        .join(", ")} but their conditions did not hold; default deny)`,
    };
  };

  return Object.freeze({
    document,
    hash: hashPolicyDocument(document),
    evaluate(input: EvaluationInput): PolicyDecision {
      try {
        return evaluateUnsafely(input);
      } catch (error) {
        return {
          effect: "deny",
          denialReason: "CONDITIONS_DENIED",
          conditionsEvaluated: [],
          matchedPolicies: [],
          message: `denied: policy evaluation failed (${safelyDescribeError(error)}); failing closed`,
        };
      }
    },
  });
}
