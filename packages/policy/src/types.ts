/**
 * Public types of the Agent Assembly policy language (see docs/policy.md).
 * This file is the contract between @aa/policy and its users (@aa/engine, @aa/core, the CLI).
 */

/** Comparison operators a condition can use. */
export type Operator =
  | "eq"
  | "ne"
  | "lt"
  | "lte"
  | "gt"
  | "gte"
  | "in"
  | "not_in"
  | "contains"
  | "starts_with"
  | "ends_with"
  | "matches"
  | "exists"
  /** `user.scopes has_scope flights:book`: a list of granted permissions covers the value (wildcards, see `permissionMatches`). */
  | "has_scope";

/** What a matching policy asks for. */
export type Effect = "allow" | "deny" | "require_approval";

/** One condition: `field` is a dotted path into the evaluation input (`args.amount`, `metadata.pr_size`). */
export interface Condition {
  field: string;
  op: Operator;
  value?: unknown;
}

export interface PolicyRule {
  name: string;
  description?: string;
  /** Glob (or list of globs) over action types; `*` matches any run of characters except `.`, `**` matches anything. */
  action: string | string[];
  effect: Effect;
  /** All must pass for `effect` to apply; otherwise `otherwise` applies. */
  when?: Condition[];
  /** Effect when a `when` condition fails. Defaults to `deny` for allow rules. */
  otherwise?: "deny" | "require_approval";
  /** For require_approval: how long an approval may stay pending (e.g. "8h", "15m", "30s"). */
  approval?: { timeout?: string };
  /**
   * Permissions the calling user must hold (`user.scopes`, wildcards allowed there) for the rule to
   * allow or hold the call. A user lacking one is denied (`CONDITIONS_DENIED`); a call with no user
   * is denied `UNAUTHENTICATED`. Only on allow and require_approval rules.
   */
  required_scopes?: string[];
}

export type RedactMode = "mask" | "hash" | "drop";

/** A redaction rule: JSONPath-style path over the call (`$.card`, `$..password`, `$.items[*].token`). */
export interface RedactRule {
  path: string;
  mode: RedactMode;
}

/** One budget in a policy file: at most `limit` per `window` (a duration such as "1h"). */
export interface BudgetRule {
  limit: number;
  window: string;
}

/** Per-agent budgets (`budgets:` in a policy file); see docs/controls.md. */
export interface PolicyBudgets {
  /** Executed calls per agent per window. */
  calls?: BudgetRule;
  /** LLM tokens per agent per window. */
  tokens?: BudgetRule;
  /** Cost per agent per window, in the unit the caller reports. */
  cost?: BudgetRule;
  /** Limits for particular agents, by agent id; unnamed kinds fall back to the ones above. */
  agents?: Record<string, { calls?: BudgetRule; tokens?: BudgetRule; cost?: BudgetRule }>;
}

/** One rate limit in a policy file: at most `limit` calls per `window` (a duration such as "1m"). */
export interface RateLimitRule {
  limit: number;
  window: string;
}

/**
 * Rate limits (`rate_limits:` in a policy file; see docs/identity.md): calls admitted per user, per
 * agent and per tenant in each window. A user's limit counts the calls of every agent and sub-agent
 * acting for that user.
 */
export interface PolicyRateLimits {
  user?: RateLimitRule;
  agent?: RateLimitRule;
  tenant?: RateLimitRule;
}

/** A validated policy document (`aa.policy.yaml`). */
export interface PolicyDocument {
  version: 1;
  /** What happens when no policy matches an action. Only `deny` is allowed (fail closed). */
  default: "deny";
  policies: PolicyRule[];
  redact: RedactRule[];
  /** Per-agent budgets; absent when the file has no `budgets:` section. */
  budgets?: PolicyBudgets;
  /** Rate limits per user, agent and tenant; absent when the file has no `rate_limits:` section. */
  rate_limits?: PolicyRateLimits;
}

/**
 * The end user a call is made for, as callers pass it (`runAs`, `onBehalfOf`, `decide({ principal })`).
 * Policies see it as `user.id`, `user.email`, `user.tenant`, `user.scopes`.
 */
export interface Principal {
  userId: string;
  email?: string;
  /** The user's tenant (organisation). */
  tenant?: string;
  /** Permissions the user holds; wildcards such as `flights:*` allowed (see `permissionMatches`). */
  scopes?: string[];
}

/** The end user a call is made for, as policies see it (`user.id`, `user.email`, `user.tenant`, `user.scopes`). */
export interface EvaluationUser {
  id: string;
  email?: string;
  tenant?: string;
  scopes?: string[];
  [k: string]: unknown;
}

/** What the evaluator sees for one call. Fields are reached as `args.*`, `metadata.*`, `agent.*`, `tool.*`, `data_accessed`, `user.*`. */
export interface EvaluationInput {
  actionType: string;
  args?: unknown;
  metadata?: Record<string, unknown>;
  agent?: { id: string; depth?: number; parent?: string | null; [k: string]: unknown };
  tool?: { name?: string; framework?: string; mcpServer?: string; [k: string]: unknown };
  dataAccessed?: unknown;
  /** The end user the call is made for; absent (or without a string `id`) means no user is known. */
  user?: EvaluationUser | null;
}

/** The result of one condition, so an agent (and an auditor) can see exactly why. */
export interface ConditionResult {
  /** Policy that owns the condition. */
  policy: string;
  field: string;
  operator: Operator;
  expected: unknown;
  actual: unknown;
  result: boolean;
}

/** `UNAUTHENTICATED`: a matching rule needs a user (`required_scopes` or a `user.*` condition) and the call has none. */
export type DenialReason = "CONDITIONS_DENIED" | "NO_MATCHING_POLICY" | "UNAUTHENTICATED";

/** The policy's answer for one call. Never throws: an evaluation error yields `deny`. */
export interface PolicyDecision {
  effect: Effect;
  /** Set when `effect` is `deny`. */
  denialReason?: DenialReason;
  /** The policy that decided (the first deny / require_approval / allow by precedence, by name order on ties). */
  policyName?: string;
  /** Every condition evaluated for the matching policies, in policy-name order. */
  conditionsEvaluated: ConditionResult[];
  /** Names of every policy whose action glob matched. */
  matchedPolicies: string[];
  /** For require_approval: the approval timeout of the deciding policy, in milliseconds (if it set one). */
  approvalTimeoutMs?: number;
  /** Human-readable one-line explanation (names the policy and each failed condition). */
  message: string;
}

/** A compiled, ready-to-evaluate policy. */
export interface CompiledPolicy {
  readonly document: PolicyDocument;
  /** SHA-256 (hex) of the RFC 8785 canonical JSON of `document`. */
  readonly hash: string;
  evaluate(input: EvaluationInput): PolicyDecision;
}

/** One problem found while parsing or validating a policy. */
export interface PolicyIssue {
  /** Source name (file path or "inline"). */
  source: string;
  /** 1-based line in the source text, when known. */
  line?: number;
  column?: number;
  /** Path to the offending field, e.g. `policies[2].when[0].op`. */
  path: string;
  message: string;
  /** How to fix it. */
  hint?: string;
}

/** Options for {@link parsePolicy}. */
export interface ParsePolicyOptions {
  /** Name used in error messages (a file path, or "inline"). Defaults to "inline". */
  source?: string;
  /** Text format. Defaults to "json" when `source` ends in `.json`, else "yaml" (YAML also reads JSON). */
  format?: "yaml" | "json";
}

/** Options for {@link validatePolicy}. */
export interface ValidatePolicyOptions {
  /** Name used in error messages. Defaults to "inline". */
  source?: string;
}

/** One step of a parsed redaction path (see {@link parseRedactPath}). */
export type RedactPathSegment =
  /** `.name` or `['name']`: an own property of an object. */
  | { kind: "property"; name: string }
  /** `[3]`: an array element. */
  | { kind: "index"; index: number }
  /** `.*` or `[*]`: every property of an object / every element of an array. */
  | { kind: "wildcard" }
  /** `..name`: the property `name` at any depth below this point. */
  | { kind: "descendant"; name: string };
