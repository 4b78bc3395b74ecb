import { describe, expect, it } from "vitest";
import type { PolicyIssue } from "../src/index.js";
import {
  compilePolicy,
  PolicyValidationError,
  parsePolicy,
  parseRedactPath,
  validatePolicy,
} from "../src/index.js";
import { thrown } from "./helpers.js";

function issuesOf(fn: () => unknown): PolicyIssue[] {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(PolicyValidationError);
  return (error as PolicyValidationError).issues;
}
const yamlIssues = (text: string) => issuesOf(() => parsePolicy(text, { source: "aa.policy.yaml" }));
const inlineIssues = (value: unknown) => issuesOf(() => validatePolicy(value));
const withPolicy = (policy: Record<string, unknown>) => ({ version: 1, default: "deny", policies: [policy] });
const base = { name: "p", action: "x", effect: "allow" };
const withCondition = (condition: Record<string, unknown>) => withPolicy({ ...base, when: [condition] });

describe("parsePolicy: YAML", () => {
  it("names the line of a bad value", () => {
    const issues = yamlIssues(`version: 1
policies:
  - name: a
    action: x
    effect: allow
    when:
      - field: args.n
        op: lt
        value: fifty
`);
    expect(issues).toEqual([
      expect.objectContaining({
        source: "aa.policy.yaml",
        line: 9,
        path: "policies[0].when[0].value",
        message: "lt compares numbers or ISO 8601 dates",
      }),
    ]);
    expect(issues[0]?.hint).toContain("value: 50");
  });

  it("reports YAML syntax errors with their line", () => {
    const issues = yamlIssues("version: 1\npolicies:\n  - name: a\n    action: [x\n");
    expect(issues[0]?.line).toBeGreaterThanOrEqual(4);
    expect(issues[0]?.message).toMatch(/YAML syntax error/);
  });

  it("rejects duplicate keys", () => {
    const issues = yamlIssues("version: 1\nversion: 1\npolicies: []\n");
    expect(issues[0]).toMatchObject({ line: 2, hint: "remove or rename the repeated key" });
  });

  it("rejects default: allow with a hint to write an explicit allow rule", () => {
    const issues = yamlIssues("version: 1\ndefault: allow\npolicies: []\n");
    expect(issues).toEqual([expect.objectContaining({ line: 2, path: "default" })]);
    expect(issues[0]?.message).toContain("fail closed");
    expect(issues[0]?.hint).toContain('action: "**", effect: allow');
  });

  it("requires version 1", () => {
    expect(yamlIssues("policies: []\n")[0]).toMatchObject({ path: "version" });
    expect(yamlIssues("version: 2\npolicies: []\n")[0]).toMatchObject({
      line: 1,
      path: "version",
      message: "must be 1",
    });
  });

  it("rejects duplicate policy names at the second one's line", () => {
    const issues = yamlIssues(`version: 1
policies:
  - { name: same, action: a, effect: allow }
  - { name: same, action: b, effect: deny }
`);
    expect(issues).toEqual([expect.objectContaining({ line: 4, path: "policies[1].name" })]);
    expect(issues[0]?.message).toContain('duplicate policy name "same"');
  });

  it("lists several issues sorted by line, with did-you-mean hints", () => {
    const issues = yamlIssues(`version: 1
polices: []
`);
    expect(issues).toContainEqual(
      expect.objectContaining({ line: 2, path: "polices", hint: 'did you mean "policies"?' }),
    );
  });

  it("formats the error message as source:line path: message (hint)", () => {
    const error = thrown(() =>
      parsePolicy("version: 1\npolicies:\n  - { name: a, action: x, effect: alow }\n", { source: "p.yaml" }),
    );
    expect((error as Error).message).toContain(
      "p.yaml:3 policies[0].effect: must be allow, deny or require_approval",
    );
  });

  it("treats __proto__ and constructor keys in YAML as unknown keys", () => {
    const issues = yamlIssues(`version: 1
policies:
  - name: a
    action: x
    effect: allow
    __proto__: { effect: deny }
    constructor: 1
`);
    expect(issues.map((issue) => issue.path)).toEqual(["policies[0].__proto__", "policies[0].constructor"]);
    expect(issues[0]?.line).toBe(6);
    expect(({} as Record<string, unknown>).effect).toBeUndefined();
  });

  it("rejects a 10k-deep YAML document with a clear error", () => {
    const deep = `version: 1\npolicies: []\nredact: ${"[".repeat(10_000)}${"]".repeat(10_000)}\n`;
    const issues = yamlIssues(deep);
    expect(issues[0]?.message).toMatch(/nested too deeply/);
  });

  it("rejects oversized text", () => {
    expect(yamlIssues(`# ${"x".repeat(1 << 20)}\nversion: 1\npolicies: []\n`)[0]?.message).toContain(
      "the limit is",
    );
  });

  it("rejects YAML NaN and infinity values", () => {
    const issues = yamlIssues(
      "version: 1\npolicies:\n  - name: a\n    action: x\n    effect: allow\n    when: [{ field: args.n, op: lt, value: .nan }]\n",
    );
    expect(issues[0]).toMatchObject({ line: 6, path: "policies[0].when[0].value" });
  });

  it("rejects alias bombs", () => {
    const bomb = `a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
version: 1
policies: []
`;
    expect(yamlIssues(bomb).length).toBeGreaterThan(0);
  });
});

describe("parsePolicy: JSON", () => {
  it("names the line of a validation issue", () => {
    const text =
      '{\n  "version": 1,\n  "policies": [\n    { "name": "a", "action": "x", "effect": "allow", "otherwise": "maybe", "when": [] }\n  ]\n}\n';
    const issues = issuesOf(() => parsePolicy(text, { source: "aa.policy.json" }));
    expect(issues[0]).toMatchObject({ source: "aa.policy.json", line: 4, path: "policies[0].otherwise" });
  });

  it("names the line of a syntax error", () => {
    const text = '{\n  "version": 1,\n  "policies": [\n    { "name": "a" "action": "x" }\n  ]\n}\n';
    const issues = issuesOf(() => parsePolicy(text, { source: "aa.policy.json" }));
    expect(issues[0]).toMatchObject({ source: "aa.policy.json", line: 4 });
    expect(issues[0]?.message).toContain("invalid JSON");
  });

  it("is strict JSON when the format is json", () => {
    expect(() => parsePolicy("version: 1\npolicies: []\n", { format: "json" })).toThrow(
      PolicyValidationError,
    );
    expect(parsePolicy('{"version":1,"policies":[]}', { format: "json" }).policies).toEqual([]);
  });
});

describe("validatePolicy: structure", () => {
  it("reports unknown keys with did-you-mean hints", () => {
    expect(inlineIssues(withPolicy({ ...base, efect: "deny" }))).toContainEqual(
      expect.objectContaining({ path: "policies[0].efect", hint: 'did you mean "effect"?' }),
    );
    expect(inlineIssues(withCondition({ feild: "args.x", op: "eq", value: 1 }))).toContainEqual(
      expect.objectContaining({ path: "policies[0].when[0].feild", hint: 'did you mean "field"?' }),
    );
    expect(
      inlineIssues({ ...withPolicy(base), redact: [{ path: "$.a", mode: "mask", mod: 1 }] }),
    ).toContainEqual(expect.objectContaining({ path: "redact[0].mod" }));
    expect(
      inlineIssues(withPolicy({ ...base, effect: "require_approval", approval: { timout: "1h" } })),
    ).toContainEqual(
      expect.objectContaining({ path: "policies[0].approval.timout", hint: 'did you mean "timeout"?' }),
    );
  });

  it("checks field roots", () => {
    const issues = inlineIssues(withCondition({ field: "arg.amount", op: "eq", value: 1 }));
    expect(issues[0]).toMatchObject({ path: "policies[0].when[0].field" });
    expect(issues[0]?.message).toContain("unknown field root");
    expect(inlineIssues(withCondition({ field: "args..x", op: "eq", value: 1 }))[0]?.path).toBe(
      "policies[0].when[0].field",
    );
  });

  it("checks op-specific value types", () => {
    const bad: Record<string, unknown>[] = [
      { op: "in", value: "dev" },
      { op: "not_in", value: [] },
      { op: "in", value: [{ a: 1 }] },
      { op: "lt", value: "soon" },
      { op: "gte", value: true },
      { op: "starts_with", value: 1 },
      { op: "ends_with" },
      { op: "matches", value: "(a)\\1" },
      { op: "matches", value: "(?=x)" },
      { op: "matches", value: "[" },
      { op: "matches", value: "a".repeat(2000) },
      { op: "exists", value: "yes" },
      { op: "eq" },
      { op: "eq", value: Number.POSITIVE_INFINITY },
      { op: "like", value: "x" },
    ];
    for (const condition of bad) {
      const issues = inlineIssues(withCondition({ field: "args.x", ...condition }));
      expect(issues.length, JSON.stringify(condition)).toBeGreaterThan(0);
      expect(issues[0]?.path.startsWith("policies[0].when[0]"), JSON.stringify(condition)).toBe(true);
    }
  });

  it("accepts each operator with a valid value", () => {
    const good: Record<string, unknown>[] = [
      { op: "eq", value: { nested: [1, "a", null] } },
      { op: "ne", value: null },
      { op: "lt", value: 5 },
      { op: "lte", value: "2025-01-01" },
      { op: "gt", value: "2025-01-01T10:00:00+02:00" },
      { op: "gte", value: -1.5 },
      { op: "in", value: ["a", 1, true, null] },
      { op: "not_in", value: ["a"] },
      { op: "contains", value: "a" },
      { op: "starts_with", value: "a" },
      { op: "ends_with", value: "a" },
      { op: "matches", value: "^a+$" },
      { op: "exists" },
      { op: "exists", value: false },
    ];
    for (const condition of good) {
      expect(
        () => validatePolicy(withCondition({ field: "args.x", ...condition })),
        JSON.stringify(condition),
      ).not.toThrow();
    }
  });

  it("checks approvals, otherwise and redact rules", () => {
    expect(
      inlineIssues(withPolicy({ ...base, effect: "require_approval", approval: { timeout: "8 hours" } }))[0]
        ?.path,
    ).toBe("policies[0].approval.timeout");
    expect(inlineIssues(withPolicy({ ...base, approval: { timeout: "8h" } }))[0]?.path).toBe(
      "policies[0].approval",
    );
    expect(inlineIssues(withPolicy({ ...base, otherwise: "deny" }))[0]?.path).toBe("policies[0].otherwise");
    expect(inlineIssues({ ...withPolicy(base), redact: [{ path: "card", mode: "mask" }] })[0]?.path).toBe(
      "redact[0].path",
    );
    expect(inlineIssues({ ...withPolicy(base), redact: [{ path: "$.card", mode: "blur" }] })[0]?.path).toBe(
      "redact[0].mode",
    );
    expect(inlineIssues(withPolicy({ ...base, action: [] }))[0]?.path).toBe("policies[0].action");
    expect(inlineIssues(withPolicy({ ...base, action: "a ***" }))[0]?.path).toBe("policies[0].action");
    expect(inlineIssues(withPolicy({ ...base, name: "" }))[0]?.path).toBe("policies[0].name");
  });

  it("rejects non-object input without crashing", () => {
    for (const value of [null, undefined, 42, "policy", [], () => 1]) {
      expect(inlineIssues(value).length).toBeGreaterThan(0);
    }
  });

  it("rejects cyclic and hostile inline values", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(inlineIssues(withCondition({ field: "args.x", op: "eq", value: cyclic }))[0]?.path).toBe(
      "policies[0].when[0].value",
    );
    const hostile = withPolicy(base);
    Object.defineProperty(hostile, "policies", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    expect(inlineIssues(hostile)[0]?.message).toContain("boom");
  });

  it("returns a frozen copy that later changes to the input cannot alter", () => {
    const input = withPolicy({ ...base, when: [{ field: "args.x", op: "eq", value: { a: 1 } }] });
    const document = validatePolicy(input);
    const hash = compilePolicy(document).hash;
    (
      (input.policies[0] as { when: { value: { a: number } }[] }).when[0] as { value: { a: number } }
    ).value.a = 2;
    expect(compilePolicy(document).hash).toBe(hash);
    expect(Object.isFrozen(document.policies[0])).toBe(true);
  });
});

describe("hash", () => {
  it("is independent of key order and format", () => {
    const yaml = "version: 1\ndefault: deny\npolicies:\n  - { name: a, action: x, effect: allow }\n";
    const json =
      '{"policies":[{"effect":"allow","action":"x","name":"a"}],"default":"deny","version":1,"redact":[]}';
    const fromYaml = compilePolicy(parsePolicy(yaml)).hash;
    expect(fromYaml).toMatch(/^[0-9a-f]{64}$/);
    expect(compilePolicy(parsePolicy(json, { format: "json" })).hash).toBe(fromYaml);
  });

  it("changes when the policy changes", () => {
    const one = compilePolicy(validatePolicy(withPolicy(base))).hash;
    const two = compilePolicy(validatePolicy(withPolicy({ ...base, effect: "deny" }))).hash;
    expect(two).not.toBe(one);
  });
});

describe("parseRedactPath", () => {
  it("parses the supported steps", () => {
    expect(parseRedactPath("$.card")).toEqual([{ kind: "property", name: "card" }]);
    expect(parseRedactPath("$..password")).toEqual([{ kind: "descendant", name: "password" }]);
    expect(parseRedactPath("$.items[*].token")).toEqual([
      { kind: "property", name: "items" },
      { kind: "wildcard" },
      { kind: "property", name: "token" },
    ]);
    expect(parseRedactPath("$['a b'][2].*")).toEqual([
      { kind: "property", name: "a b" },
      { kind: "index", index: 2 },
      { kind: "wildcard" },
    ]);
  });

  it("rejects malformed paths", () => {
    for (const path of ["card", "$", "$.", "$..", "$[x]", "$.a b", "$['a]"]) {
      expect(() => parseRedactPath(path), path).toThrow(SyntaxError);
    }
  });
});
