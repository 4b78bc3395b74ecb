import { describe, expect, it } from "vitest";
import { matchesAction, parseDuration } from "../src/index.js";
import { compileRules } from "./helpers.js";

describe("action globs", () => {
  it("matches exact names, * within a segment and ** across segments", () => {
    expect(matchesAction("pr.open", "pr.open")).toBe(true);
    expect(matchesAction("pr.open", "pr.opened")).toBe(false);
    expect(matchesAction("pr.*", "pr.open")).toBe(true);
    expect(matchesAction("pr.*", "pr.review.approve")).toBe(false);
    expect(matchesAction("pr.**", "pr.review.approve")).toBe(true);
    expect(matchesAction("pr.**", "pr")).toBe(false);
    expect(matchesAction("*", "search")).toBe(true);
    expect(matchesAction("*", "fs.read")).toBe(false);
    expect(matchesAction("**", "fs.read.all")).toBe(true);
    expect(matchesAction("fs.*_file", "fs.read_file")).toBe(true);
    expect(matchesAction("fs.*_file", "fs.read.x_file")).toBe(false);
    expect(matchesAction("**.delete", "db.table.delete")).toBe(true);
    expect(matchesAction("*.*.delete", "db.table.delete")).toBe(true);
    expect(matchesAction("*.*.delete", "db.delete")).toBe(false);
    expect(matchesAction("a*b*c", "aXbYc")).toBe(true);
    expect(matchesAction("a*b*c", "aXbY.c")).toBe(false);
  });

  it("rejects invalid arguments instead of throwing", () => {
    expect(matchesAction("", "x")).toBe(false);
    expect(matchesAction("***", "x")).toBe(false);
    expect(matchesAction(1 as unknown as string, "x")).toBe(false);
  });

  it("stays fast on a glob built to backtrack", () => {
    expect(matchesAction("*a*a*a*a*a*a*a*a*a*a*b", "a".repeat(5_000))).toBe(false);
  });

  it("accepts a list of globs in a policy", () => {
    const policy = compileRules([{ name: "prs", action: ["pr.open", "pr.merge"], effect: "allow" }]);
    expect(policy.evaluate({ actionType: "pr.merge" }).effect).toBe("allow");
    expect(policy.evaluate({ actionType: "pr.close" }).effect).toBe("deny");
  });
});

describe("precedence", () => {
  const allowAll = { name: "allow-all", action: "**", effect: "allow" } as const;
  const denyDeletes = { name: "no-deletes", action: "*.delete", effect: "deny" } as const;
  const reviewDb = { name: "review-db", action: "db.*", effect: "require_approval" } as const;

  it("any deny wins over approval and allow", () => {
    const decision = compileRules([allowAll, denyDeletes, reviewDb]).evaluate({ actionType: "db.delete" });
    expect(decision).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
      policyName: "no-deletes",
    });
    expect(decision.matchedPolicies).toEqual(["allow-all", "no-deletes", "review-db"]);
    expect(decision.message).toBe('denied by policy "no-deletes"');
  });

  it("require_approval wins over allow", () => {
    const decision = compileRules([allowAll, denyDeletes, reviewDb]).evaluate({ actionType: "db.query" });
    expect(decision).toMatchObject({ effect: "require_approval", policyName: "review-db" });
    expect(decision.denialReason).toBeUndefined();
  });

  it("the lowest name decides among rules of the winning effect", () => {
    const rules = [
      { name: "zeta", action: "x", effect: "deny" },
      { name: "alpha", action: "x", effect: "deny" },
      { name: "beta", action: "x", effect: "allow" },
    ] as const;
    expect(compileRules([...rules]).evaluate({ actionType: "x" }).policyName).toBe("alpha");
  });

  it("lists conditions of every matched policy in name order", () => {
    const policy = compileRules([
      { name: "b", action: "x", effect: "allow", when: [{ field: "args.n", op: "lt", value: 5 }] },
      { name: "a", action: "x", effect: "deny", when: [{ field: "args.n", op: "gt", value: 100 }] },
    ]);
    const decision = policy.evaluate({ actionType: "x", args: { n: 3 } });
    expect(decision.effect).toBe("allow");
    expect(decision.conditionsEvaluated.map((c) => [c.policy, c.operator, c.result])).toEqual([
      ["a", "gt", false],
      ["b", "lt", true],
    ]);
  });
});

describe("otherwise", () => {
  const when = [{ field: "args.n", op: "lt", value: 5 }] as const;

  it("defaults to deny for allow rules", () => {
    const decision = compileRules([
      { name: "small", action: "x", effect: "allow", when: [...when] },
    ]).evaluate({
      actionType: "x",
      args: { n: 9 },
    });
    expect(decision).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
      policyName: "small",
    });
    expect(decision.message).toBe('denied by policy "small": args.n lt 5 failed (actual 9)');
  });

  it("can hold for approval instead, with the rule's timeout", () => {
    const decision = compileRules([
      {
        name: "small",
        action: "x",
        effect: "allow",
        when: [...when],
        otherwise: "require_approval",
        approval: { timeout: "15m" },
      },
    ]).evaluate({ actionType: "x", args: { n: 9 } });
    expect(decision).toMatchObject({
      effect: "require_approval",
      policyName: "small",
      approvalTimeoutMs: 900_000,
    });
    expect(decision.message).toBe('approval required by policy "small": args.n lt 5 failed (actual 9)');
  });

  it("a deny rule whose conditions fail does not apply by default", () => {
    const policy = compileRules([
      { name: "big", action: "x", effect: "deny", when: [{ field: "args.n", op: "gt", value: 100 }] },
      { name: "open", action: "x", effect: "allow" },
    ]);
    expect(policy.evaluate({ actionType: "x", args: { n: 9 } })).toMatchObject({
      effect: "allow",
      policyName: "open",
    });
    const denied = policy.evaluate({ actionType: "x", args: { n: 500 } });
    expect(denied).toMatchObject({ effect: "deny", policyName: "big" });
    expect(denied.message).toBe('denied by policy "big": args.n gt 100 matched (actual 500)');
  });

  it("a require_approval rule whose conditions fail does not apply by default", () => {
    const policy = compileRules([
      {
        name: "big",
        action: "x",
        effect: "require_approval",
        when: [{ field: "args.n", op: "gt", value: 100 }],
      },
    ]);
    const decision = policy.evaluate({ actionType: "x", args: { n: 9 } });
    expect(decision).toMatchObject({
      effect: "deny",
      denialReason: "NO_MATCHING_POLICY",
      matchedPolicies: ["big"],
    });
    expect(decision.message).toContain("no policy applies");
  });

  it("names every failed condition with expected and actual values", () => {
    const policy = compileRules([
      {
        name: "deploy",
        action: "deploy",
        effect: "allow",
        when: [
          { field: "args.env", op: "in", value: ["dev", "staging"] },
          { field: "args.replicas", op: "lte", value: 3 },
          { field: "args.ticket", op: "exists" },
        ],
      },
    ]);
    const decision = policy.evaluate({ actionType: "deploy", args: { env: "prod", replicas: 2 } });
    expect(decision.message).toBe(
      'denied by policy "deploy": args.env in ["dev","staging"] failed (actual "prod"); args.ticket exists failed (actual missing)',
    );
  });
});

describe("parseDuration", () => {
  it("reads units and combinations", () => {
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("15m")).toBe(900_000);
    expect(parseDuration("8h")).toBe(28_800_000);
    expect(parseDuration("2d")).toBe(172_800_000);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("1h30m")).toBe(5_400_000);
  });

  it("rejects what is not a duration", () => {
    for (const text of ["", "8", "h", "8 h", "-1s", "1.5h", "0s", "400d", "8H"]) {
      expect(() => parseDuration(text), text).toThrow(RangeError);
    }
  });
});
