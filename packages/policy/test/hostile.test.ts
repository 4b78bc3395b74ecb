import { describe, expect, it } from "vitest";
import type { EvaluationInput } from "../src/index.js";
import { compileRules } from "./helpers.js";

const guarded = compileRules([
  {
    name: "allow-small",
    action: "pay",
    effect: "allow",
    when: [{ field: "args.amount", op: "lt", value: 100 }],
  },
  { name: "no-prod", action: "pay", effect: "deny", when: [{ field: "args.env", op: "ne", value: "dev" }] },
  {
    name: "no-secrets",
    action: "pay",
    effect: "deny",
    when: [{ field: "args.note", op: "matches", value: "secret" }],
  },
  {
    name: "reads",
    action: "read.*",
    effect: "allow",
    when: [{ field: "args.path", op: "starts_with", value: "/pub/" }],
  },
]);

function expectNotAllowed(input: unknown) {
  const decision = guarded.evaluate(input as EvaluationInput);
  expect(decision.effect).not.toBe("allow");
  expect(() => JSON.stringify(decision)).not.toThrow();
  return decision;
}

describe("hostile evaluation input", () => {
  it("denies 10k-deep args without crashing", () => {
    let deep: unknown = { amount: 1 };
    for (let i = 0; i < 10_000; i++) deep = { nested: deep };
    const decision = expectNotAllowed({ actionType: "pay", args: deep });
    expect(decision.conditionsEvaluated.length).toBeGreaterThan(0);
  });

  it("handles a 10 MB string, recording only a preview", () => {
    const huge = "s".repeat(10 * 1024 * 1024);
    const decision = expectNotAllowed({ actionType: "pay", args: { amount: 1, env: "dev", note: huge } });
    expect(decision.policyName).toBe("no-secrets");
    expect(JSON.stringify(decision).length).toBeLessThan(4_000);
  });

  it("treats __proto__ and constructor in args as plain keys", () => {
    const polluted = JSON.parse('{"__proto__": {"amount": 1, "env": "dev"}, "constructor": {"amount": 1}}');
    const decision = expectNotAllowed({ actionType: "pay", args: polluted });
    expect(decision.effect).toBe("deny");
    expect(({} as Record<string, unknown>).amount).toBeUndefined();
  });

  it("never allows on NaN, Infinity, -0 or big-number strings where a number is expected", () => {
    for (const amount of [Number.NaN, Number.POSITIVE_INFINITY, "99999999999999999999999", "1e2", "-1"]) {
      expectNotAllowed({ actionType: "pay", args: { amount, env: "dev" } });
    }
    expect(guarded.evaluate({ actionType: "pay", args: { amount: -0, env: "dev" } }).effect).toBe("allow");
    expect(
      guarded.evaluate({ actionType: "pay", args: { amount: Number.NEGATIVE_INFINITY, env: "dev" } }).effect,
    ).toBe("allow");
  });

  it("records non-JSON actual values in a JSON-safe form", () => {
    const decision = guarded.evaluate({ actionType: "pay", args: { amount: Number.NaN, env: -0 } });
    const actuals = decision.conditionsEvaluated.map((c) => c.actual);
    expect(actuals).toContain("NaN");
    expect(actuals).toContain(0);
    expect(JSON.parse(JSON.stringify(decision)).conditionsEvaluated).toHaveLength(3);
  });

  it("handles cyclic args", () => {
    const cyclic: Record<string, unknown> = { amount: 1, env: "dev" };
    cyclic.self = cyclic;
    cyclic.env = cyclic;
    expectNotAllowed({ actionType: "pay", args: cyclic });
    const policy = compileRules([
      {
        name: "eq",
        action: "x",
        effect: "allow",
        when: [{ field: "args", op: "eq", value: { a: { a: 1 } } }],
      },
    ]);
    const loop: Record<string, unknown> = {};
    loop.a = loop;
    const decision = policy.evaluate({ actionType: "x", args: loop });
    expect(decision.effect).toBe("deny");
    expect(decision.message).toMatch(/evaluation failed|failed \(actual/);
  });

  it("fails closed when reading args throws", () => {
    const trap = new Proxy(
      {},
      {
        getOwnPropertyDescriptor() {
          throw new Error("trap");
        },
        has() {
          throw new Error("trap");
        },
      },
    );
    const decision = expectNotAllowed({ actionType: "pay", args: trap });
    expect(decision).toMatchObject({ effect: "deny", denialReason: "CONDITIONS_DENIED" });
    expect(decision.message).toContain("policy evaluation failed");
    const getter = {
      get amount() {
        throw new Error("getter");
      },
    };
    expectNotAllowed({ actionType: "pay", args: getter });
  });

  it("denies malformed inputs", () => {
    for (const input of [
      null,
      undefined,
      1,
      "pay",
      {},
      { actionType: 7 },
      { actionType: "" },
      { actionType: "x".repeat(5000) },
    ]) {
      const decision = expectNotAllowed(input);
      expect(decision.effect).toBe("deny");
    }
  });

  it("does not let a huge array slow contains down catastrophically", () => {
    const policy = compileRules([
      {
        name: "tags",
        action: "t",
        effect: "allow",
        when: [{ field: "args.tags", op: "contains", value: "ok" }],
      },
    ]);
    const tags = new Array(1_000_000).fill("no");
    const decision = policy.evaluate({ actionType: "t", args: { tags } });
    expect(decision.effect).toBe("deny");
    expect(JSON.stringify(decision).length).toBeLessThan(4_000);
  });
});
