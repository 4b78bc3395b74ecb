import { describe, expect, it } from "vitest";
import { PolicyValidationError, parsePolicy } from "../src/index.js";
import { compileYaml, thrown } from "./helpers.js";

const SPEC_EXAMPLE = `version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when:
      - { field: metadata.pr_size, op: lt, value: 50 }
    otherwise: deny
  - name: merges-need-review
    action: pr.merge
    effect: require_approval
    approval: { timeout: 8h }
redact: [ { path: "$.card", mode: mask } ]
`;

describe("the spec's example policy", () => {
  const policy = compileYaml(SPEC_EXAMPLE);

  it("allows a small PR and records the passing condition", () => {
    const decision = policy.evaluate({ actionType: "pr.open", metadata: { pr_size: 12 } });
    expect(decision).toEqual({
      effect: "allow",
      policyName: "small-prs",
      matchedPolicies: ["small-prs"],
      conditionsEvaluated: [
        {
          policy: "small-prs",
          field: "metadata.pr_size",
          operator: "lt",
          expected: 50,
          actual: 12,
          result: true,
        },
      ],
      message: 'allowed by policy "small-prs"',
    });
  });

  it("denies a large PR naming the failed condition with its actual value", () => {
    const decision = policy.evaluate({ actionType: "pr.open", metadata: { pr_size: 120 } });
    expect(decision.effect).toBe("deny");
    expect(decision.denialReason).toBe("CONDITIONS_DENIED");
    expect(decision.message).toBe('denied by policy "small-prs": metadata.pr_size lt 50 failed (actual 120)');
  });

  it("holds merges for approval with the policy's timeout", () => {
    const decision = policy.evaluate({ actionType: "pr.merge" });
    expect(decision.effect).toBe("require_approval");
    expect(decision.approvalTimeoutMs).toBe(8 * 3_600_000);
  });

  it("denies an action no policy matches", () => {
    const decision = policy.evaluate({ actionType: "repo.delete" });
    expect(decision).toMatchObject({
      effect: "deny",
      denialReason: "NO_MATCHING_POLICY",
      matchedPolicies: [],
    });
  });

  it("fills in redact and default", () => {
    const document = parsePolicy(SPEC_EXAMPLE);
    expect(document.redact).toEqual([{ path: "$.card", mode: "mask" }]);
    expect(document.default).toBe("deny");
  });

  it("reports a typo with source, line and a did-you-mean hint", () => {
    const error = thrown(() =>
      parsePolicy(SPEC_EXAMPLE.replace("effect: allow", "efect: allow"), { source: "aa.policy.yaml" }),
    );
    expect(error).toBeInstanceOf(PolicyValidationError);
    const { issues, code, message } = error as PolicyValidationError;
    expect(code).toBe("POLICY_INVALID");
    expect(issues).toContainEqual({
      source: "aa.policy.yaml",
      line: 6,
      column: 5,
      path: "policies[0].efect",
      message: 'unknown key "efect"',
      hint: 'did you mean "effect"?',
    });
    expect(message).toContain(
      'aa.policy.yaml:6 policies[0].efect: unknown key "efect" (did you mean "effect"?)',
    );
  });
});
