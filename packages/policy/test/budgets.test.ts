/** The optional top-level `budgets:` section: validated with line-located errors, hashed with the document. */
import { describe, expect, it } from "vitest";
import type { PolicyIssue } from "../src/index.js";
import { compilePolicy, PolicyValidationError, parsePolicy, validatePolicy } from "../src/index.js";
import { thrown } from "./helpers.js";

const head = "version: 1\npolicies: []\n";
function issues(text: string): PolicyIssue[] {
  const error = thrown(() => parsePolicy(text, { source: "aa.policy.yaml" }));
  expect(error).toBeInstanceOf(PolicyValidationError);
  return (error as PolicyValidationError).issues;
}

describe("budgets section", () => {
  it("accepts calls, tokens, cost and per-agent overrides, and changes the policy hash", () => {
    const text = `${head}budgets:
  calls: { limit: 500, window: 1h }
  tokens: { limit: 200000, window: 1d }
  cost: { limit: 2.5, window: 1d }
  agents:
    batch-bot: { calls: { limit: 5000, window: 1h } }
`;
    const document = parsePolicy(text);
    expect(document.budgets).toEqual({
      calls: { limit: 500, window: "1h" },
      tokens: { limit: 200000, window: "1d" },
      cost: { limit: 2.5, window: "1d" },
      agents: { "batch-bot": { calls: { limit: 5000, window: "1h" } } },
    });
    expect(Object.isFrozen(document.budgets)).toBe(true);
    const without = parsePolicy(head);
    expect("budgets" in without).toBe(false);
    expect(compilePolicy(document).hash).not.toBe(compilePolicy(without).hash);
  });

  it("rejects bad limits, bad windows and unknown keys with the line, the path and a hint", () => {
    expect(issues(`${head}budgets:\n  calls: { limit: -1, window: 1h }\n`)).toMatchObject([
      { line: 4, path: "budgets.calls.limit", message: "must be at least 0" },
    ]);
    expect(issues(`${head}budgets:\n  tokens: { limit: 1.5, window: 1h }\n`)).toMatchObject([
      { path: "budgets.tokens.limit", message: "must be a whole number" },
    ]);
    const window = issues(`${head}budgets:\n  cost: { limit: 1, window: soon }\n`);
    expect(window[0]).toMatchObject({ path: "budgets.cost.window" });
    expect(window[0]!.message).toContain("Invalid duration");
    const typo = issues(`${head}budgets:\n  agents:\n    x: { call: { limit: 1, window: 1h } }\n`);
    expect(typo[0]!.path).toBe("budgets.agents.x.call");
    expect(`${typo[0]!.message} ${typo[0]!.hint}`).toContain("calls");
    expect(issues(`${head}budgets:\n  calls: { limit: 1, windw: 1h }\n`).map((i) => i.path)).toContain(
      "budgets.calls.windw",
    );
    expect(thrown(() => validatePolicy({ version: 1, policies: [], budgets: [] }))).toBeInstanceOf(
      PolicyValidationError,
    );
  });
});
