import { describe, expect, it } from "vitest";
import type { Condition, Effect, EvaluationInput } from "../src/index.js";
import { compileRules } from "./helpers.js";

/** Evaluates one condition in a rule of the given effect and returns the recorded condition result. */
function conditionResult(
  condition: Condition,
  input: Omit<EvaluationInput, "actionType">,
  effect: Effect = "allow",
) {
  const policy = compileRules([{ name: "rule", action: "act", effect, when: [condition] }]);
  const decision = policy.evaluate({ actionType: "act", ...input });
  expect(decision.conditionsEvaluated).toHaveLength(1);
  return decision.conditionsEvaluated[0];
}
const holds = (condition: Condition, args: unknown, effect: Effect = "allow") =>
  conditionResult(condition, { args }, effect)?.result;

describe("operators", () => {
  it("eq compares scalars strictly and structures deeply", () => {
    expect(holds({ field: "args.x", op: "eq", value: 5 }, { x: 5 })).toBe(true);
    expect(holds({ field: "args.x", op: "eq", value: 5 }, { x: "5" })).toBe(false);
    expect(holds({ field: "args.x", op: "eq", value: 0 }, { x: -0 })).toBe(true);
    expect(holds({ field: "args.x", op: "eq", value: { a: [1, 2] } }, { x: { a: [1, 2] } })).toBe(true);
    expect(holds({ field: "args.x", op: "eq", value: { a: [1, 2] } }, { x: { a: [2, 1] } })).toBe(false);
    expect(holds({ field: "args.x", op: "eq", value: null }, { x: null })).toBe(true);
    expect(holds({ field: "args.x", op: "eq", value: null }, {})).toBe(false);
  });

  it("ne holds for a present, comparable, different value", () => {
    expect(holds({ field: "args.env", op: "ne", value: "prod" }, { env: "dev" })).toBe(true);
    expect(holds({ field: "args.env", op: "ne", value: "prod" }, { env: "prod" })).toBe(false);
  });

  it("ne and not_in on a missing or incomparable value resolve toward restriction", () => {
    const ne = { field: "args.env", op: "ne", value: "prod" } as const;
    const notIn = { field: "args.env", op: "not_in", value: ["prod"] } as const;
    for (const args of [{}, { env: 7 }, { env: ["dev"] }, undefined]) {
      expect(holds(ne, args, "allow")).toBe(false);
      expect(holds(ne, args, "deny")).toBe(true);
      expect(holds(ne, args, "require_approval")).toBe(true);
      expect(holds(notIn, args, "allow")).toBe(false);
      expect(holds(notIn, args, "deny")).toBe(true);
    }
  });

  it("lt, lte, gt, gte compare numbers", () => {
    expect(holds({ field: "args.n", op: "lt", value: 10 }, { n: 9 })).toBe(true);
    expect(holds({ field: "args.n", op: "lt", value: 10 }, { n: 10 })).toBe(false);
    expect(holds({ field: "args.n", op: "lte", value: 10 }, { n: 10 })).toBe(true);
    expect(holds({ field: "args.n", op: "gt", value: 10 }, { n: 11 })).toBe(true);
    expect(holds({ field: "args.n", op: "gt", value: 10 }, { n: 10 })).toBe(false);
    expect(holds({ field: "args.n", op: "gte", value: 10 }, { n: 10 })).toBe(true);
  });

  it("ordering on mismatched types, NaN or missing values is false", () => {
    for (const n of ["9", Number.NaN, null, [1], { v: 1 }, true]) {
      expect(holds({ field: "args.n", op: "lt", value: 10 }, { n })).toBe(false);
      expect(holds({ field: "args.n", op: "gte", value: 10 }, { n })).toBe(false);
    }
    expect(holds({ field: "args.n", op: "lt", value: 10 }, {})).toBe(false);
  });

  it("ordering compares ISO 8601 dates (strings or Date objects)", () => {
    const before = { field: "args.at", op: "lt", value: "2025-01-31T00:00:00Z" } as const;
    expect(holds(before, { at: "2025-01-30T23:59:59Z" })).toBe(true);
    expect(holds(before, { at: "2025-02-01" })).toBe(false);
    expect(holds(before, { at: new Date("2024-01-01T00:00:00Z") })).toBe(true);
    expect(holds(before, { at: "yesterday" })).toBe(false);
    expect(holds(before, { at: 0 })).toBe(false);
  });

  it("in and not_in test membership of scalars", () => {
    expect(holds({ field: "args.env", op: "in", value: ["dev", "staging"] }, { env: "dev" })).toBe(true);
    expect(holds({ field: "args.env", op: "in", value: ["dev", "staging"] }, { env: "prod" })).toBe(false);
    expect(holds({ field: "args.env", op: "in", value: [1, 2] }, { env: "1" })).toBe(false);
    expect(holds({ field: "args.env", op: "in", value: ["dev"] }, { env: ["dev"] })).toBe(false);
    expect(holds({ field: "args.env", op: "not_in", value: ["prod"] }, { env: "dev" })).toBe(true);
    expect(holds({ field: "args.env", op: "not_in", value: ["prod"] }, { env: "prod" })).toBe(false);
  });

  it("contains tests substrings and array membership", () => {
    expect(holds({ field: "args.cmd", op: "contains", value: "rm -rf" }, { cmd: "sudo rm -rf /" })).toBe(
      true,
    );
    expect(holds({ field: "args.cmd", op: "contains", value: "rm -rf" }, { cmd: "ls" })).toBe(false);
    expect(holds({ field: "args.tags", op: "contains", value: "prod" }, { tags: ["dev", "prod"] })).toBe(
      true,
    );
    expect(holds({ field: "args.tags", op: "contains", value: 3 }, { tags: [1, 2] })).toBe(false);
    expect(holds({ field: "args.tags", op: "contains", value: { a: 1 } }, { tags: [{ a: 1 }] })).toBe(true);
    expect(holds({ field: "args.cmd", op: "contains", value: 1 }, { cmd: "1" })).toBe(false);
    expect(holds({ field: "args.cmd", op: "contains", value: "x" }, { cmd: { x: 1 } })).toBe(false);
  });

  it("starts_with and ends_with test strings only", () => {
    expect(holds({ field: "args.url", op: "starts_with", value: "https://" }, { url: "https://a" })).toBe(
      true,
    );
    expect(holds({ field: "args.url", op: "starts_with", value: "https://" }, { url: "http://a" })).toBe(
      false,
    );
    expect(holds({ field: "args.file", op: "ends_with", value: ".md" }, { file: "README.md" })).toBe(true);
    expect(holds({ field: "args.file", op: "ends_with", value: ".md" }, { file: ["a.md"] })).toBe(false);
  });

  it("matches runs an RE2 pattern over strings", () => {
    const branch = { field: "args.branch", op: "matches", value: "^release/[0-9]+\\.[0-9]+$" } as const;
    expect(holds(branch, { branch: "release/1.2" })).toBe(true);
    expect(holds(branch, { branch: "release/1.2-hotfix" })).toBe(false);
    expect(holds(branch, { branch: 12 })).toBe(false);
    expect(holds({ field: "args.s", op: "matches", value: "(?i)^prod" }, { s: "PRODUCTION" })).toBe(true);
  });

  it("matches on a pathological input stays linear", () => {
    const nested = { field: "args.s", op: "matches", value: "^(a+)+$" } as const;
    expect(holds(nested, { s: `${"a".repeat(100_000)}!` })).toBe(false);
  });

  it("matches on an input over 1 MiB resolves toward restriction", () => {
    const condition = { field: "args.s", op: "matches", value: "danger" } as const;
    const huge = "x".repeat((1 << 20) + 1);
    expect(holds(condition, { s: huge }, "allow")).toBe(false);
    expect(holds(condition, { s: huge }, "deny")).toBe(true);
  });

  it("exists checks presence (null counts as present)", () => {
    expect(holds({ field: "args.x", op: "exists" }, { x: 0 })).toBe(true);
    expect(holds({ field: "args.x", op: "exists" }, { x: null })).toBe(true);
    expect(holds({ field: "args.x", op: "exists" }, {})).toBe(false);
    expect(holds({ field: "args.x", op: "exists", value: true }, { x: undefined })).toBe(false);
    expect(holds({ field: "args.x", op: "exists", value: false }, {})).toBe(true);
    expect(holds({ field: "args.x", op: "exists", value: false }, { x: 1 })).toBe(false);
  });
});

describe("field lookup", () => {
  it("reads every root", () => {
    const input = {
      args: { a: 1 },
      metadata: { m: 2 },
      agent: { id: "bot", depth: 3 },
      tool: { name: "t", mcpServer: "files" },
      dataAccessed: ["pii"],
      user: { id: "u1", email: "a@b.c" },
    };
    const expectHolds = (field: string, value: unknown) =>
      expect(conditionResult({ field, op: "eq", value }, input)?.result, field).toBe(true);
    expectHolds("args.a", 1);
    expectHolds("metadata.m", 2);
    expectHolds("agent.depth", 3);
    expectHolds("tool.mcpServer", "files");
    expectHolds("data_accessed", ["pii"]);
    expectHolds("data_accessed.0", "pii");
    expectHolds("user.email", "a@b.c");
    expectHolds("args", { a: 1 });
  });

  it("indexes arrays by canonical integers only", () => {
    const args = { items: ["a", "b"] };
    expect(holds({ field: "args.items.1", op: "eq", value: "b" }, args)).toBe(true);
    expect(holds({ field: "args.items.01", op: "exists" }, args)).toBe(false);
    expect(holds({ field: "args.items.length", op: "exists" }, args)).toBe(false);
    expect(holds({ field: "args.items.2", op: "exists" }, args)).toBe(false);
  });

  it("never walks the prototype chain", () => {
    for (const field of ["args.__proto__", "args.constructor", "args.toString", "args.hasOwnProperty"]) {
      expect(holds({ field, op: "exists" }, {}), field).toBe(false);
    }
    expect(holds({ field: "args.x.constructor.name", op: "eq", value: "Object" }, { x: {} })).toBe(false);
    const inherited = Object.create({ secret: 1 });
    expect(holds({ field: "args.secret", op: "exists" }, inherited)).toBe(false);
    const own = JSON.parse('{"__proto__": {"admin": true}}');
    expect(holds({ field: "args.__proto__.admin", op: "eq", value: true }, own)).toBe(true);
  });

  it("records the actual value, cutting long strings to 256 characters", () => {
    const result = conditionResult(
      { field: "args.s", op: "eq", value: "x" },
      { args: { s: "y".repeat(10_000) } },
    );
    const actual = String(result?.actual);
    expect(typeof result?.actual).toBe("string");
    expect(actual.startsWith("y".repeat(256))).toBe(true);
    expect(actual.length).toBeLessThan(300);
  });

  it("records a missing value as undefined", () => {
    const result = conditionResult({ field: "args.s", op: "eq", value: "x" }, { args: {} });
    expect(result).toEqual({
      policy: "rule",
      field: "args.s",
      operator: "eq",
      expected: "x",
      actual: undefined,
      result: false,
    });
  });
});

describe("a value of the wrong type never turns a deny into an allow", () => {
  const cases: [Condition, unknown][] = [
    [{ field: "args.amount", op: "gt", value: 1000 }, { amount: "5000" }],
    [{ field: "args.amount", op: "gte", value: 1000 }, { amount: Number.NaN }],
    [{ field: "args.when", op: "lt", value: "2026-01-01" }, { when: 20251231 }],
    [{ field: "args.env", op: "eq", value: "prod" }, { env: ["prod"] }],
    [{ field: "args.env", op: "in", value: ["prod", "staging"] }, { env: { name: "prod" } }],
    [{ field: "args.path", op: "starts_with", value: "/etc" }, { path: ["/etc/passwd"] }],
    [{ field: "args.sql", op: "contains", value: "DROP" }, { sql: 42 }],
    [{ field: "args.host", op: "matches", value: "\\.internal$" }, { host: { name: "db.internal" } }],
  ];
  for (const [condition, args] of cases) {
    it(`${condition.field} ${condition.op} ${JSON.stringify(condition.value)} with ${JSON.stringify(args)}`, () => {
      // In a deny rule the undecidable condition holds: the deny applies.
      const deny = compileRules([
        { name: "guard", action: "act", effect: "deny", when: [condition] },
        { name: "open", action: "act", effect: "allow" },
      ]).evaluate({ actionType: "act", args });
      expect(deny).toMatchObject({ effect: "deny", policyName: "guard" });
      // In an allow rule it fails: no allow.
      expect(holds(condition, args, "allow")).toBe(false);
    });
  }

  it("a missing field still leaves a positive deny condition unmet (the rule does not apply)", () => {
    const decision = compileRules([
      {
        name: "guard",
        action: "act",
        effect: "deny",
        when: [{ field: "args.amount", op: "gt", value: 1000 }],
      },
      { name: "open", action: "act", effect: "allow" },
    ]).evaluate({ actionType: "act", args: {} });
    expect(decision).toMatchObject({ effect: "allow", policyName: "open" });
  });
});
