/**
 * Acting on behalf of people: wildcard permissions, `required_scopes`, `user.*` conditions and the
 * `rate_limits:` section.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { PolicyIssue } from "../src/index.js";
import {
  compilePolicy,
  describeInvalidPermission,
  describeInvalidPrincipal,
  hasPermission,
  intersectScopes,
  PolicyValidationError,
  parsePolicy,
  permissionMatches,
  validatePolicy,
} from "../src/index.js";
import { compileRules, compileYaml, thrown } from "./helpers.js";

function issues(text: string): PolicyIssue[] {
  const error = thrown(() => parsePolicy(text, { source: "aa.policy.yaml" }));
  expect(error).toBeInstanceOf(PolicyValidationError);
  return (error as PolicyValidationError).issues;
}

describe("permissionMatches / hasPermission", () => {
  it("covers by wildcard segment and reads the needed permission literally", () => {
    expect(permissionMatches("flights:*", "flights:book")).toBe(true);
    expect(permissionMatches("flights:*", "flights:book:intl")).toBe(true);
    expect(permissionMatches("flights:*", "flights")).toBe(false);
    expect(permissionMatches("flights:*", "flightsx:book")).toBe(false);
    expect(permissionMatches("flights:*", "flights.book")).toBe(false);
    expect(permissionMatches("flights:book", "flights:*")).toBe(false);
    expect(permissionMatches("flights:*", "flights:*")).toBe(true);
    expect(permissionMatches("*", "payments:refund")).toBe(true);
    expect(permissionMatches("repo:*:read", "repo:web:read")).toBe(true);
    expect(permissionMatches("repo:*:read", "repo:web:write")).toBe(false);
    expect(permissionMatches("repo:*:read", "repo:web:read:all")).toBe(false);
    expect(permissionMatches("tools.*", "tools.read")).toBe(true);
    expect(permissionMatches("Tools.read", "tools.read")).toBe(false);
    expect(permissionMatches("fli*", "flights:book")).toBe(false);
  });

  it("never matches malformed permissions (fail closed)", () => {
    expect(permissionMatches("*", "")).toBe(false);
    expect(permissionMatches("", "")).toBe(false);
    expect(permissionMatches("a b", "a b")).toBe(false);
    expect(permissionMatches("flights::book", "flights::book")).toBe(false);
    expect(permissionMatches(42 as unknown as string, "x")).toBe(false);
    expect(hasPermission(undefined, "x")).toBe(false);
    expect(hasPermission("x" as unknown as string[], "x")).toBe(false);
    expect(describeInvalidPermission("flights:")).toContain("empty segment");
    expect(describeInvalidPermission("a\tb")).toContain("whitespace");
    expect(describeInvalidPermission("x".repeat(257))).toContain("at most 256");
  });

  const segment = fc.constantFrom("flights", "book", "read", "payments", "refund", "x");
  const separator = fc.constantFrom(":", ".");
  const permission = fc
    .tuple(segment, fc.array(fc.tuple(separator, segment), { maxLength: 3 }))
    .map(([first, rest]) => first + rest.map(([sep, seg]) => sep + seg).join(""));
  const grant = fc
    .tuple(
      fc.oneof(segment, fc.constant("*")),
      fc.array(fc.tuple(separator, fc.oneof(segment, fc.constant("*"))), { maxLength: 3 }),
    )
    .map(([first, rest]) => first + rest.map(([sep, seg]) => sep + seg).join(""));

  it("properties: reflexive, * covers all, literals cover only themselves, a trailing * covers every extension", () => {
    fc.assert(
      fc.property(permission, grant, (needed, granted) => {
        expect(permissionMatches(needed, needed)).toBe(true);
        expect(permissionMatches(granted, granted)).toBe(true);
        expect(permissionMatches("*", needed)).toBe(true);
        if (!granted.includes("*")) expect(permissionMatches(granted, needed)).toBe(granted === needed);
        // A wildcard grant never covers less than the literal segments it spells out.
        expect(permissionMatches(`${needed}:*`, needed)).toBe(false);
      }),
      { numRuns: 300 },
    );
    fc.assert(
      fc.property(
        permission,
        fc.array(fc.tuple(separator, segment), { minLength: 1, maxLength: 3 }),
        (prefix, rest) => {
          const extension = prefix + rest.map(([sep, seg]) => sep + seg).join("");
          const [sep] = rest[0]!;
          expect(permissionMatches(`${prefix}${sep}*`, extension)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it("properties: hasPermission is any-of and monotone (more scopes never take a permission away)", () => {
    fc.assert(
      fc.property(fc.array(grant, { maxLength: 4 }), grant, permission, (scopes, extra, needed) => {
        expect(hasPermission(scopes, needed)).toBe(scopes.some((s) => permissionMatches(s, needed)));
        if (hasPermission(scopes, needed)) expect(hasPermission([...scopes, extra], needed)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("intersectScopes keeps what both sides cover and is never wider than either (property)", () => {
    expect(intersectScopes(["flights:*"], ["flights:book", "hotels:read"])).toEqual(["flights:book"]);
    expect(intersectScopes(["*"], ["a:b"])).toEqual(["a:b"]);
    expect(intersectScopes(["a:b"], [])).toEqual([]);
    fc.assert(
      fc.property(
        fc.array(grant, { maxLength: 4 }),
        fc.array(grant, { maxLength: 4 }),
        permission,
        (a, b, needed) => {
          const both = intersectScopes(a, b);
          if (hasPermission(both, needed)) {
            expect(hasPermission(a, needed)).toBe(true);
            expect(hasPermission(b, needed)).toBe(true);
          }
          // Exact whenever one side holds the needed permission literally.
          if (a.includes(needed) && hasPermission(b, needed)) expect(hasPermission(both, needed)).toBe(true);
          expect(new Set(intersectScopes(b, a))).toEqual(new Set(both));
        },
      ),
      { numRuns: 400 },
    );
  });

  it("describeInvalidPrincipal names the field that is wrong", () => {
    expect(
      describeInvalidPrincipal({ userId: "u", email: "e@x", tenant: "t", scopes: ["a:*"] }),
    ).toBeUndefined();
    expect(describeInvalidPrincipal(null)).toContain("must be an object");
    expect(describeInvalidPrincipal({ userId: "" }, "onBehalfOf")).toContain("onBehalfOf.userId");
    expect(describeInvalidPrincipal({ userId: "u", scopes: ["a b"] })).toContain("principal.scopes");
    expect(describeInvalidPrincipal({ userId: "u", role: "admin" })).toContain('unknown field "role"');
  });

  it("properties: a match implies the same number of segments, or a trailing wildcard", () => {
    fc.assert(
      fc.property(grant, permission, (granted, needed) => {
        if (!permissionMatches(granted, needed)) return;
        const count = (p: string) => p.split(/[:.]/).length;
        if (granted !== "*" && !/[:.]\*$/.test(granted)) expect(count(granted)).toBe(count(needed));
        else expect(count(needed)).toBeGreaterThanOrEqual(count(granted));
      }),
      { numRuns: 300 },
    );
  });
});

describe("required_scopes", () => {
  const policy = compileYaml(`version: 1
policies:
  - name: book-flights
    action: flights.book
    effect: allow
    required_scopes: [flights:book]
  - name: refunds
    action: payments.refund
    effect: require_approval
    required_scopes: ["payments:refund", tools.write]
  - name: search
    action: flights.search
    effect: allow
`);

  it("allows a user holding the scope (directly or by wildcard)", () => {
    for (const scopes of [["flights:book"], ["flights:*"], ["*"], ["other", "flights:*"]]) {
      const decision = policy.evaluate({ actionType: "flights.book", user: { id: "u1", scopes } });
      expect(decision.effect).toBe("allow");
      expect(decision.conditionsEvaluated).toEqual([
        {
          policy: "book-flights",
          field: "user.scopes",
          operator: "has_scope",
          expected: "flights:book",
          actual: scopes,
          result: true,
        },
      ]);
    }
  });

  it("denies a user lacking a scope with CONDITIONS_DENIED and the failed scope", () => {
    const decision = policy.evaluate({
      actionType: "payments.refund",
      user: { id: "u1", scopes: ["payments:refund", "tools.read"] },
    });
    expect(decision).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
      policyName: "refunds",
    });
    expect(decision.conditionsEvaluated.map((c) => [c.expected, c.result])).toEqual([
      ["payments:refund", true],
      ["tools.write", false],
    ]);
    expect(decision.message).toBe(
      'denied by policy "refunds": user.scopes has_scope "tools.write" failed (actual ["payments:refund","tools.read"])',
    );
    expect(policy.evaluate({ actionType: "flights.book", user: { id: "u1" } })).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
    });
    expect(
      policy.evaluate({ actionType: "payments.refund", user: { id: "u", scopes: ["payments:*", "tools.*"] } })
        .effect,
    ).toBe("require_approval");
  });

  it("denies a call with no user UNAUTHENTICATED, naming the policy and how to fix it", () => {
    for (const user of [undefined, null, {}, { id: "" }, { id: 7 }] as unknown[]) {
      const decision = policy.evaluate({ actionType: "flights.book", user } as never);
      expect(decision).toMatchObject({
        effect: "deny",
        denialReason: "UNAUTHENTICATED",
        policyName: "book-flights",
      });
      expect(decision.message).toContain("on behalf of a user");
      expect(decision.conditionsEvaluated).toEqual([
        {
          policy: "book-flights",
          field: "user.id",
          operator: "exists",
          expected: true,
          actual: undefined,
          result: false,
        },
      ]);
    }
    // Rules that do not need a user still work without one.
    expect(policy.evaluate({ actionType: "flights.search" }).effect).toBe("allow");
  });

  it("a missing scope is not rescued by otherwise: require_approval", () => {
    const compiled = compileRules([
      {
        name: "refunds",
        action: "payments.refund",
        effect: "allow",
        required_scopes: ["payments:refund"],
        when: [{ field: "args.amount", op: "lt", value: 100 }],
        otherwise: "require_approval",
      },
    ]);
    const user = { id: "u", scopes: ["payments:refund"] };
    expect(compiled.evaluate({ actionType: "payments.refund", args: { amount: 500 }, user }).effect).toBe(
      "require_approval",
    );
    expect(
      compiled.evaluate({
        actionType: "payments.refund",
        args: { amount: 500 },
        user: { id: "u", scopes: [] },
      }),
    ).toMatchObject({ effect: "deny", denialReason: "CONDITIONS_DENIED" });
  });

  it("an UNAUTHENTICATED rule outranks other denials and allows", () => {
    const compiled = compileRules([
      { name: "a-open", action: "x", effect: "allow" },
      { name: "b-deny-big", action: "x", effect: "deny", when: [{ field: "args.n", op: "gt", value: 5 }] },
      {
        name: "c-tenant",
        action: "x",
        effect: "allow",
        when: [{ field: "user.tenant", op: "eq", value: "acme" }],
      },
    ]);
    expect(compiled.evaluate({ actionType: "x", args: { n: 9 } })).toMatchObject({
      denialReason: "UNAUTHENTICATED",
      policyName: "c-tenant",
    });
    expect(
      compiled.evaluate({ actionType: "x", args: { n: 1 }, user: { id: "u", tenant: "acme" } }).effect,
    ).toBe("allow");
    expect(
      compiled.evaluate({ actionType: "x", args: { n: 1 }, user: { id: "u", tenant: "other" } }),
    ).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
      policyName: "c-tenant",
    });
  });

  it("validates with line, path and hint", () => {
    const head = "version: 1\npolicies:\n";
    expect(
      issues(`${head}  - name: d\n    action: x\n    effect: deny\n    required_scopes: [a:b]\n`),
    ).toMatchObject([
      { line: 6, path: "policies[0].required_scopes", message: expect.stringContaining("allow") },
    ]);
    expect(
      issues(`${head}  - name: d\n    action: x\n    effect: allow\n    required_scopes: []\n`),
    ).toMatchObject([{ line: 6, path: "policies[0].required_scopes" }]);
    expect(
      issues(`${head}  - name: d\n    action: x\n    effect: allow\n    required_scopes: ["a b", ok]\n`),
    ).toMatchObject([
      { line: 6, path: "policies[0].required_scopes[0]", message: expect.stringContaining("whitespace") },
    ]);
    const typo = issues(`${head}  - name: d\n    action: x\n    effect: allow\n    required_scope: [a]\n`);
    expect(typo[0]).toMatchObject({
      path: "policies[0].required_scope",
      hint: 'did you mean "required_scopes"?',
    });
  });

  it("is part of the policy hash", () => {
    const base = { version: 1, policies: [{ name: "p", action: "x", effect: "allow" }] };
    const scoped = {
      version: 1,
      policies: [{ name: "p", action: "x", effect: "allow", required_scopes: ["a"] }],
    };
    expect(compilePolicy(validatePolicy(base)).hash).not.toBe(compilePolicy(validatePolicy(scoped)).hash);
  });
});

describe("user.* conditions and has_scope", () => {
  it("reads user.id, user.email, user.tenant and user.scopes", () => {
    const compiled = compileYaml(`version: 1
policies:
  - name: staff-only
    action: admin.*
    effect: allow
    when:
      - { field: user.email, op: ends_with, value: "@example.com" }
      - { field: user.tenant, op: eq, value: acme }
      - { field: user.scopes, op: has_scope, value: "admin:write" }
  - name: no-bob
    action: admin.*
    effect: deny
    when:
      - { field: user.id, op: eq, value: bob }
`);
    const alice = { id: "alice", email: "alice@example.com", tenant: "acme", scopes: ["admin:*"] };
    expect(compiled.evaluate({ actionType: "admin.reset", user: alice }).effect).toBe("allow");
    expect(compiled.evaluate({ actionType: "admin.reset", user: { ...alice, id: "bob" } })).toMatchObject({
      effect: "deny",
      policyName: "no-bob",
    });
    const outsider = compiled.evaluate({ actionType: "admin.reset", user: { ...alice, tenant: "globex" } });
    expect(outsider).toMatchObject({
      effect: "deny",
      denialReason: "CONDITIONS_DENIED",
      policyName: "staff-only",
    });
    expect(outsider.message).toContain('user.tenant eq "acme" failed (actual "globex")');
    expect(compiled.evaluate({ actionType: "admin.reset" }).denialReason).toBe("UNAUTHENTICATED");
    // Scopes of the wrong type never grant.
    expect(
      compiled.evaluate({ actionType: "admin.reset", user: { ...alice, scopes: "admin:*" as never } }).effect,
    ).toBe("deny");
  });

  it("a rule that only asks whether a user exists does not need one", () => {
    const compiled = compileRules([
      {
        name: "service-calls",
        action: "jobs.run",
        effect: "allow",
        when: [{ field: "user", op: "exists", value: false }],
      },
    ]);
    expect(compiled.evaluate({ actionType: "jobs.run" }).effect).toBe("allow");
    expect(compiled.evaluate({ actionType: "jobs.run", user: { id: "u" } }).effect).toBe("deny");
  });

  it("validates has_scope values", () => {
    const head = "version: 1\npolicies:\n  - name: p\n    action: x\n    effect: allow\n    when:\n";
    expect(issues(`${head}      - { field: user.scopes, op: has_scope, value: 5 }\n`)).toMatchObject([
      {
        line: 7,
        path: "policies[0].when[0].value",
        message: expect.stringContaining("has_scope needs one permission"),
      },
    ]);
    expect(issues(`${head}      - { field: user.scopes, op: has_scope }\n`)[0]!.message).toContain(
      "needs a value",
    );
  });
});

describe("rate_limits section", () => {
  const head = "version: 1\npolicies: []\n";
  it("accepts user, agent and tenant limits", () => {
    const document = parsePolicy(
      `${head}rate_limits:\n  user: { limit: 60, window: 1m }\n  agent: { limit: 600, window: 1m }\n  tenant: { limit: 5000, window: 1h }\n`,
    );
    expect(document.rate_limits).toEqual({
      user: { limit: 60, window: "1m" },
      agent: { limit: 600, window: "1m" },
      tenant: { limit: 5000, window: "1h" },
    });
    expect(compilePolicy(document).hash).not.toBe(compilePolicy(parsePolicy(head)).hash);
  });

  it("rejects bad limits, windows and keys with the line and a hint", () => {
    expect(issues(`${head}rate_limits:\n  user: { limit: 0, window: 1m }\n`)).toMatchObject([
      { line: 4, path: "rate_limits.user.limit", message: expect.stringContaining("at least 1") },
    ]);
    expect(issues(`${head}rate_limits:\n  user: { limit: 2.5, window: 1m }\n`)[0]!.path).toBe(
      "rate_limits.user.limit",
    );
    expect(issues(`${head}rate_limits:\n  agent: { limit: 5, window: never }\n`)[0]!.path).toBe(
      "rate_limits.agent.window",
    );
    expect(issues(`${head}rate_limits:\n  users: { limit: 5, window: 1m }\n`)[0]).toMatchObject({
      path: "rate_limits.users",
      hint: 'did you mean "user"?',
    });
    expect(issues(`${head}rate_limits:\n  user: { limit: 5, windw: 1m }\n`).map((i) => i.path)).toContain(
      "rate_limits.user.windw",
    );
  });
});
