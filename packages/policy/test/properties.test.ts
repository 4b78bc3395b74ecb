import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Condition, EvaluationInput, PolicyRule } from "../src/index.js";
import { compileRules } from "./helpers.js";

const segment = fc.constantFrom("pr", "db", "fs", "open", "merge", "read", "x");
const actionType = fc.array(segment, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("."));
const glob = fc
  .array(fc.oneof(segment, fc.constant("*"), fc.constant("**")), { minLength: 1, maxLength: 3 })
  .map((parts) => parts.join("."));
const scalar = fc.oneof(
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom("a", "b", "dev", "prod"),
  fc.boolean(),
  fc.constant(null),
);

const condition: fc.Arbitrary<Condition> = fc.oneof(
  fc.record({
    field: fc.constantFrom("args.n", "args.missing"),
    op: fc.constantFrom("lt", "gte", "eq", "ne"),
    value: fc.integer({ min: -5, max: 5 }),
  }),
  fc.record({
    field: fc.constantFrom("args.env", "metadata.env"),
    op: fc.constantFrom("in", "not_in"),
    value: fc.array(scalar, { minLength: 1, maxLength: 3 }),
  }),
  fc.record({
    field: fc.constantFrom("args.env", "args.tags"),
    op: fc.constantFrom("contains", "eq", "ne"),
    value: scalar,
  }),
  fc.record({
    field: fc.constantFrom("args.env", "agent.id"),
    op: fc.constant("matches" as const),
    value: fc.constantFrom("^d", "o", "[a-c]+"),
  }),
  fc.record({
    field: fc.constantFrom("args.n", "args.missing"),
    op: fc.constant("exists" as const),
    value: fc.boolean(),
  }),
);

const ruleBody = fc.record({
  action: fc.oneof(glob, fc.array(glob, { minLength: 1, maxLength: 2 })),
  effect: fc.constantFrom("allow", "deny", "require_approval"),
  when: fc.array(condition, { maxLength: 3 }),
  otherwise: fc.option(fc.constantFrom("deny", "require_approval"), { nil: undefined }),
});

const rules: fc.Arbitrary<PolicyRule[]> = fc.array(ruleBody, { maxLength: 8 }).map((bodies) =>
  bodies.map((body, index) => {
    const rule: PolicyRule = { name: `rule-${index}`, action: body.action, effect: body.effect };
    if (body.when.length > 0) rule.when = body.when;
    if (body.otherwise !== undefined && body.when.length > 0) rule.otherwise = body.otherwise;
    return rule;
  }),
);

const input: fc.Arbitrary<EvaluationInput> = fc.record({
  actionType,
  args: fc.record(
    {
      n: fc.oneof(fc.integer({ min: -6, max: 6 }), scalar),
      env: scalar,
      tags: fc.array(scalar, { maxLength: 3 }),
    },
    { requiredKeys: [] },
  ),
  metadata: fc.record({ env: scalar }, { requiredKeys: [] }),
  agent: fc.record({ id: fc.constantFrom("dev-bot", "ops", "abc") }),
});

const RUNS = { numRuns: 300 };

describe("properties", () => {
  it("default deny: with no policies every action is denied", () => {
    const policy = compileRules([]);
    fc.assert(
      fc.property(input, (call) => {
        expect(policy.evaluate(call)).toMatchObject({ effect: "deny", denialReason: "NO_MATCHING_POLICY" });
      }),
      RUNS,
    );
  });

  it("an action that no policy's glob matches is denied", () => {
    fc.assert(
      fc.property(rules, input, (policies, call) => {
        const decision = compileRules(policies).evaluate(call);
        if (decision.matchedPolicies.length === 0) expect(decision.denialReason).toBe("NO_MATCHING_POLICY");
        if (decision.effect === "allow") expect(decision.matchedPolicies.length).toBeGreaterThan(0);
      }),
      RUNS,
    );
  });

  it("any deny wins: adding an unconditional matching deny rule always denies", () => {
    fc.assert(
      fc.property(rules, input, (policies, call) => {
        const decision = compileRules([
          ...policies,
          { name: "zz-deny", action: "**", effect: "deny" },
        ]).evaluate(call);
        expect(decision.effect).toBe("deny");
      }),
      RUNS,
    );
  });

  it("order and duplicates do not change the decision", () => {
    fc.assert(
      fc.property(rules, input, fc.integer(), (policies, call, seed) => {
        const expected = compileRules(policies).evaluate(call);
        const shuffled = [...policies].sort(
          (a, b) =>
            ((a.name.length * seed) % 7) - ((b.name.length * seed) % 7) || b.name.localeCompare(a.name),
        );
        const duplicated = [...shuffled, ...policies.map((rule) => ({ ...rule, name: `${rule.name}-copy` }))];
        const reordered = compileRules(shuffled).evaluate(call);
        expect(reordered).toEqual(expected);
        const withCopies = compileRules(duplicated).evaluate(call);
        expect(withCopies.effect).toBe(expected.effect);
        expect(withCopies.denialReason).toBe(expected.denialReason);
        expect(withCopies.policyName).toBe(expected.policyName);
      }),
      RUNS,
    );
  });

  it("is deterministic: evaluating twice (warm memo) gives equal decisions", () => {
    fc.assert(
      fc.property(rules, input, (policies, call) => {
        const policy = compileRules(policies);
        expect(policy.evaluate(call)).toEqual(policy.evaluate(call));
        expect(compileRules(policies).evaluate(call)).toEqual(policy.evaluate(call));
      }),
      RUNS,
    );
  });

  it("an evaluation error never allows", () => {
    fc.assert(
      fc.property(
        rules,
        actionType,
        fc.constantFrom("args", "metadata", "agent"),
        (policies, action, root) => {
          const exploding = new Proxy(
            {},
            {
              getOwnPropertyDescriptor() {
                throw new Error("exploding input");
              },
            },
          );
          const allowing = [
            ...policies,
            {
              name: "allow-all",
              action: "**",
              effect: "allow" as const,
              when: [{ field: `${root}.x`, op: "exists" as const, value: false }],
            },
          ];
          const decision = compileRules(allowing).evaluate({
            actionType: action,
            [root]: exploding,
          } as EvaluationInput);
          expect(decision.effect).toBe("deny");
        },
      ),
      RUNS,
    );
  });

  it("a missing field never turns a deny into an allow", () => {
    const negated = fc
      .record({
        field: fc.constant("args.env"),
        op: fc.constantFrom("ne" as const, "not_in" as const),
        value: fc.constantFrom("prod", "dev"),
      })
      .map((c): Condition => (c.op === "not_in" ? { ...c, value: [c.value] } : c));
    fc.assert(
      fc.property(rules, input, fc.array(negated, { minLength: 1, maxLength: 2 }), (policies, call, when) => {
        const guard: PolicyRule = { name: "guard", action: "**", effect: "deny", when };
        const args = { ...(call.args as Record<string, unknown>) };
        delete args.env;
        const decision = compileRules([...policies, guard]).evaluate({ ...call, args });
        expect(decision.effect).toBe("deny");
      }),
      RUNS,
    );
  });
});
