import { z } from "zod";
import { parseDuration } from "./duration.js";
import { describeInvalidField } from "./fields.js";
import { describeInvalidGlob } from "./glob.js";
import { compileSafeRegex, OPERATORS, parseIsoTimestamp } from "./operators.js";
import { describeInvalidPermission } from "./permissions.js";
import { parseRedactPath } from "./redact-path.js";
import { describeInvalidJsonValue, isScalar } from "./values.js";

/** Known keys per object kind, for "did you mean" hints on unknown keys. */
export const KNOWN_KEYS = {
  document: ["version", "default", "policies", "redact", "budgets", "rate_limits"],
  policy: ["name", "description", "action", "effect", "when", "otherwise", "approval", "required_scopes"],
  condition: ["field", "op", "value"],
  approval: ["timeout"],
  redact: ["path", "mode"],
  budgets: ["calls", "tokens", "cost", "agents"],
  budget: ["limit", "window"],
  rateLimits: ["user", "agent", "tenant"],
} as const;

const POLICY_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;

const glob = z
  .string({ error: "must be a string (an action glob such as pr.open, pr.*, or **)" })
  .superRefine((value, ctx) => {
    const problem = describeInvalidGlob(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });

function checkConditionValue(
  condition: { op: string; value?: unknown },
  hasValue: boolean,
  ctx: z.RefinementCtx,
) {
  const { op, value } = condition;
  const fail = (message: string, hint?: string) =>
    ctx.addIssue({ code: "custom", path: ["value"], message, params: hint === undefined ? {} : { hint } });
  if (op === "exists") {
    if (hasValue && typeof value !== "boolean")
      fail("exists takes true, false or no value", "write value: true, or leave value out");
    return;
  }
  if (!hasValue) {
    fail(`operator ${op} needs a value`, `add value: ... to the condition`);
    return;
  }
  const jsonProblem = describeInvalidJsonValue(value);
  if (jsonProblem !== undefined) {
    fail(`value ${jsonProblem}`);
    return;
  }
  switch (op) {
    case "lt":
    case "lte":
    case "gt":
    case "gte":
      if (typeof value === "number") return;
      if (typeof value === "string" && !Number.isNaN(parseIsoTimestamp(value))) return;
      fail(
        `${op} compares numbers or ISO 8601 dates`,
        'write a number (value: 50) or an ISO date (value: "2025-01-31T00:00:00Z")',
      );
      return;
    case "in":
    case "not_in":
      if (!Array.isArray(value) || value.length === 0 || !value.every(isScalar)) {
        fail(`${op} needs a non-empty list of strings, numbers, booleans or null`, 'write value: ["a", "b"]');
      }
      return;
    case "starts_with":
    case "ends_with":
      if (typeof value !== "string")
        fail(`${op} needs a string value`, `quote it: value: "${String(value)}"`);
      return;
    case "has_scope": {
      const problem = describeInvalidPermission(value);
      if (problem !== undefined)
        fail(`has_scope needs one permission: ${problem}`, 'write value: "flights:book"');
      return;
    }
    case "matches":
      if (typeof value !== "string") {
        fail("matches needs a regular expression as a string");
        return;
      }
      try {
        compileSafeRegex(value);
      } catch (error) {
        fail(
          `invalid or unsafe regular expression: ${error instanceof Error ? error.message : String(error)}`,
          "patterns use RE2 syntax (linear time): no backreferences or lookarounds, at most 1024 characters",
        );
      }
      return;
    default:
      return;
  }
}

const condition = z
  .strictObject({
    field: z
      .string({ error: "must be a string such as args.amount or metadata.pr_size" })
      .superRefine((value, ctx) => {
        const problem = describeInvalidField(value);
        if (problem !== undefined) {
          ctx.addIssue({
            code: "custom",
            message: problem,
            params: {
              hint: "write e.g. args.amount, metadata.pr_size, agent.id, tool.name, data_accessed or user.email",
            },
          });
        }
      }),
    op: z.enum(OPERATORS as [string, ...string[]], { error: `must be one of ${OPERATORS.join(", ")}` }),
    value: z.unknown().optional(),
  })
  .superRefine((value, ctx) =>
    checkConditionValue(value, Object.hasOwn(value, "value") && value.value !== undefined, ctx),
  );

const policy = z
  .strictObject(
    {
      name: z
        .string({ error: "must be a string" })
        .regex(POLICY_NAME, "must be 1-128 letters, digits or . _ : / - and start with a letter or digit"),
      description: z.string({ error: "must be a string" }).optional(),
      action: z.union([glob, z.array(glob).min(1, "must list at least one action glob")], {
        error: 'must be an action glob or a list of them, e.g. pr.open, "pr.*" or [pr.open, pr.merge]',
      }),
      effect: z.enum(["allow", "deny", "require_approval"], {
        error: "must be allow, deny or require_approval",
      }),
      when: z.array(condition, { error: "must be a list of conditions ({ field, op, value })" }).optional(),
      otherwise: z
        .enum(["deny", "require_approval"], { error: "must be deny or require_approval" })
        .optional(),
      approval: z
        .strictObject(
          {
            timeout: z
              .string({ error: 'must be a duration string such as "30s", "15m", "8h" or "2d"' })
              .superRefine((value, ctx) => {
                try {
                  parseDuration(value);
                } catch (error) {
                  ctx.addIssue({ code: "custom", message: (error as Error).message });
                }
              })
              .optional(),
          },
          { error: "must be an object such as { timeout: 8h }" },
        )
        .optional(),
      required_scopes: z
        .array(
          z
            .string({ error: "must be a permission string such as flights:book" })
            .superRefine((value, ctx) => {
              const problem = describeInvalidPermission(value);
              if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
            }),
          { error: "must be a list of permissions, e.g. [flights:book, tools.read]" },
        )
        .min(1, { error: "must list at least one permission (or leave required_scopes out)" })
        .optional(),
    },
    { error: "each policy must be an object with name, action and effect" },
  )
  .superRefine((value, ctx) => {
    if (
      value.approval !== undefined &&
      value.effect !== "require_approval" &&
      value.otherwise !== "require_approval"
    ) {
      ctx.addIssue({
        code: "custom",
        path: ["approval"],
        message: "approval only applies to a policy that can require approval",
        params: { hint: "set effect: require_approval or otherwise: require_approval, or remove approval" },
      });
    }
    if (value.required_scopes !== undefined && value.effect === "deny") {
      ctx.addIssue({
        code: "custom",
        path: ["required_scopes"],
        message: "required_scopes only applies to allow and require_approval policies",
        params: {
          hint: "write an allow policy with required_scopes: calls of users lacking them are denied",
        },
      });
    }
    if (value.otherwise !== undefined && (value.when === undefined || value.when.length === 0)) {
      ctx.addIssue({
        code: "custom",
        path: ["otherwise"],
        message: "otherwise only applies when a when condition fails, and this policy has no conditions",
        params: { hint: "add when conditions or remove otherwise" },
      });
    }
  });

const redactRule = z.strictObject(
  {
    path: z
      .string({ error: 'must be a string such as "$.card" or "$..password"' })
      .superRefine((value, ctx) => {
        try {
          parseRedactPath(value);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: (error as Error).message });
        }
      }),
    mode: z.enum(["mask", "hash", "drop"], { error: "must be mask, hash or drop" }),
  },
  { error: "each redact rule must be an object { path, mode }" },
);

const duration = z
  .string({ error: 'must be a duration such as "1h", "15m" or "1d"' })
  .superRefine((value, ctx) => {
    try {
      parseDuration(value);
    } catch (error) {
      ctx.addIssue({ code: "custom", message: (error as Error).message });
    }
  });

function budgetRule(kind: "calls" | "tokens" | "cost") {
  const limit =
    kind === "cost"
      ? z.number({ error: "must be a number of at least 0" }).min(0, { error: "must be at least 0" })
      : z
          .number({ error: "must be a whole number of at least 0" })
          .int({ error: "must be a whole number" })
          .min(0, { error: "must be at least 0" });
  return z.strictObject(
    { limit, window: duration },
    { error: `the ${kind} budget must be an object { limit, window }, e.g. { limit: 500, window: 1h }` },
  );
}

const budgetKinds = {
  calls: budgetRule("calls").optional(),
  tokens: budgetRule("tokens").optional(),
  cost: budgetRule("cost").optional(),
};

const budgets = z.strictObject(
  {
    ...budgetKinds,
    agents: z
      .record(
        z.string().min(1, { error: "an agent id must not be empty" }),
        z.strictObject(budgetKinds, { error: "must be an object { calls?, tokens?, cost? }" }),
        { error: "must map agent ids to { calls?, tokens?, cost? }" },
      )
      .optional(),
  },
  { error: "budgets must be an object { calls?, tokens?, cost?, agents? }" },
);

function rateLimitRule(kind: "user" | "agent" | "tenant") {
  return z.strictObject(
    {
      limit: z
        .number({ error: "must be a whole number of at least 1" })
        .int({ error: "must be a whole number" })
        .min(1, { error: "must be at least 1 (to forbid calls, write a deny policy)" }),
      window: duration,
    },
    { error: `the ${kind} rate limit must be an object { limit, window }, e.g. { limit: 60, window: 1m }` },
  );
}

const rateLimits = z.strictObject(
  {
    user: rateLimitRule("user").optional(),
    agent: rateLimitRule("agent").optional(),
    tenant: rateLimitRule("tenant").optional(),
  },
  { error: "rate_limits must be an object { user?, agent?, tenant? }" },
);

export const policyDocumentSchema = z.strictObject(
  {
    version: z.literal(1, { error: "must be 1" }),
    default: z
      .unknown()
      .optional()
      .superRefine((value, ctx) => {
        if (value === undefined || value === "deny") return;
        ctx.addIssue({
          code: "custom",
          message:
            value === "allow" ? "default: allow is not supported; policies fail closed" : "must be deny",
          params: {
            hint: 'write default: deny and allow what you mean explicitly, e.g. a policy { name: allow-all, action: "**", effect: allow }',
          },
        });
      }),
    policies: z.array(policy, { error: "must be a list of policies" }),
    redact: z.array(redactRule, { error: "must be a list of { path, mode } rules" }).optional(),
    budgets: budgets.optional(),
    rate_limits: rateLimits.optional(),
  },
  { error: "a policy document must be an object with version, default and policies" },
);
