import { createHmac, randomBytes } from "node:crypto";
import canonicalize from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HmacKeySet } from "../../src/crypto/secret.js";
import { compileRedactor, REDACTED, RedactionRuleError } from "../../src/redaction/index.js";
import { canonicalJson } from "../../src/redaction/json-view.js";

const hmacKey = { version: 3, secret: randomBytes(32) };
const plain = { hmacKey, detectors: false };

function hmacOf(value: unknown, key = hmacKey): string {
  const digest = createHmac("sha256", key.secret).update(canonicalize(value)!).digest("hex");
  return `hmac-sha256:v${key.version}:${digest}`;
}

describe("compileRedactor: modes on every value type", () => {
  const values: Array<[string, unknown]> = [
    ["string", "4111 1111 1111 1111"],
    ["number", 4111111111111111],
    ["boolean", true],
    ["null", null],
    ["object", { number: "4111", cvc: 123 }],
    ["array", ["4111", 1, { a: false }]],
  ];

  for (const [type, card] of values) {
    it(`mask replaces a ${type} whole`, () => {
      const result = compileRedactor([{ path: "$.card", mode: "mask" }], plain)({ card, keep: 1 });
      expect(result).toEqual({ value: { card: REDACTED, keep: 1 }, fired: ["$.card:mask"] });
    });

    it(`hash replaces a ${type} with the keyed HMAC of its canonical JSON`, () => {
      const result = compileRedactor([{ path: "$.card", mode: "hash" }], plain)({ card, keep: 1 });
      expect(result).toEqual({ value: { card: hmacOf(card), keep: 1 }, fired: ["$.card:hash"] });
    });

    it(`drop removes a ${type} member`, () => {
      const result = compileRedactor([{ path: "$.card", mode: "drop" }], plain)({ card, keep: 1 });
      expect(result).toEqual({ value: { keep: 1 }, fired: ["$.card:drop"] });
      expect(Object.hasOwn(result.value as object, "card")).toBe(false);
    });
  }

  it("drop replaces an array element with the marker so other indexes keep their meaning", () => {
    const redact = compileRedactor([{ path: "$.items[1]", mode: "drop" }], plain);
    expect(redact({ items: ["a", "b", "c"] }).value).toEqual({ items: ["a", REDACTED, "c"] });
  });

  it("drop, mask and hash of the root", () => {
    expect(compileRedactor([{ path: "$", mode: "drop" }], plain)({ a: 1 }).value).toBe(REDACTED);
    expect(compileRedactor([{ path: "$", mode: "mask" }], plain)([1]).value).toBe(REDACTED);
    expect(compileRedactor([{ path: "$", mode: "hash" }], plain)({ b: 1, a: 2 }).value).toBe(
      hmacOf({ a: 2, b: 1 }),
    );
  });

  it("hashes equal values equally regardless of key order, and differently under another key version", () => {
    const redact = compileRedactor([{ path: "$..card", mode: "hash" }], plain);
    const { value } = redact({ x: { card: { a: 1, b: [2] } }, y: { card: { b: [2], a: 1 } } }) as {
      value: { x: { card: string }; y: { card: string } };
    };
    expect(value.x.card).toBe(value.y.card);
    const keys = HmacKeySet.generate();
    keys.rotate();
    const rotated = compileRedactor([{ path: "$.card", mode: "hash" }], {
      hmacKey: keys.activeKey(),
      detectors: false,
    });
    expect(rotated({ card: "4111" }).value).toEqual({
      card: expect.stringMatching(/^hmac-sha256:v2:[0-9a-f]{64}$/),
    });
  });
});

describe("compileRedactor: paths", () => {
  const doc = () => ({
    user: { name: "ann", email: "ann@example.test" },
    items: [
      { token: "t1", sku: "a" },
      { token: "t2", sku: "b" },
    ],
    nested: { deeper: { name: "bob", list: [{ name: "cy" }] } },
    "weird key": "w",
  });

  it.each([
    ["$.user.email", { user: { name: "ann", email: REDACTED } }],
    [
      "$.items[0].token",
      {
        items: [
          { token: REDACTED, sku: "a" },
          { token: "t2", sku: "b" },
        ],
      },
    ],
    [
      "$.items[-1].sku",
      {
        items: [
          { token: "t1", sku: "a" },
          { token: "t2", sku: REDACTED },
        ],
      },
    ],
    [
      "$.items[*].token",
      {
        items: [
          { token: REDACTED, sku: "a" },
          { token: REDACTED, sku: "b" },
        ],
      },
    ],
    ["$['weird key']", { "weird key": REDACTED }],
    ["$.user.*", { user: { name: REDACTED, email: REDACTED } }],
  ])("%s selects exactly its targets", (path, expected) => {
    const result = compileRedactor([{ path, mode: "mask" }], plain)(doc());
    expect(result.value).toMatchObject(expected);
    expect(result.fired).toEqual([`${path}:mask`]);
  });

  it("$..name finds names at any depth, including inside arrays", () => {
    const result = compileRedactor([{ path: "$..name", mode: "mask" }], plain)(doc());
    const value = result.value as ReturnType<typeof doc>;
    expect([value.user.name, value.nested.deeper.name, value.nested.deeper.list[0]!.name]).toEqual([
      REDACTED,
      REDACTED,
      REDACTED,
    ]);
    expect(value.items[0]!.token).toBe("t1");
  });

  it("an index never selects an object key and a name never selects an array element", () => {
    const redact = compileRedactor(
      [
        { path: "$.a[0]", mode: "mask" },
        { path: "$.b.0", mode: "mask" },
      ],
      plain,
    );
    expect(redact({ a: { "0": "x" }, b: ["y"] })).toEqual({
      value: { a: { "0": "x" }, b: ["y"] },
      fired: [],
    });
  });

  it("reports nothing when no rule matched, and ignores paths that lead nowhere", () => {
    const redact = compileRedactor([{ path: "$.missing.deep", mode: "drop" }], plain);
    expect(redact({ other: 1 })).toEqual({ value: { other: 1 }, fired: [] });
    expect(redact("scalar root")).toEqual({ value: "scalar root", fired: [] });
  });

  it("applies the strongest of several rules on one value and reports only it", () => {
    const redact = compileRedactor(
      [
        { path: "$..card", mode: "hash" },
        { path: "$.pay.card", mode: "drop" },
        { path: "$.pay.*", mode: "mask" },
      ],
      plain,
    );
    const result = redact({ pay: { card: "4111", amount: 5 } });
    expect(result.value).toEqual({ pay: { amount: REDACTED } });
    expect(result.fired).toEqual(["$.pay.card:drop", "$.pay.*:mask"]);
  });

  it("does not run rules below an already masked value", () => {
    const redact = compileRedactor(
      [
        { path: "$.a", mode: "mask" },
        { path: "$.a.b", mode: "hash" },
      ],
      plain,
    );
    expect(redact({ a: { b: 1 } })).toEqual({ value: { a: REDACTED }, fired: ["$.a:mask"] });
  });
});

describe("compileRedactor: robustness", () => {
  it("never mutates its input", () => {
    const input = { card: "4111", list: [{ password: "p" }], note: "key sk-proj-Abc123Def456Ghi789Jkl0" };
    const snapshot = structuredClone(input);
    compileRedactor(
      [
        { path: "$.card", mode: "drop" },
        { path: "$.list[0]", mode: "drop" },
      ],
      { hmacKey },
    )(input);
    expect(input).toEqual(snapshot);
  });

  it("turns cycles into [Circular], in the walk and in hashes", () => {
    const a: Record<string, unknown> = { name: "a" };
    a.self = a;
    a.list = [a];
    const result = compileRedactor([{ path: "$.h", mode: "hash" }], plain)({ a, h: a });
    expect(result.value).toEqual({
      a: { name: "a", self: "[Circular]", list: ["[Circular]"] },
      h: hmacOf({ name: "a", self: "[Circular]", list: ["[Circular]"] }),
    });
  });

  it("keeps shared (non-cyclic) references", () => {
    const shared = { v: 1 };
    expect(compileRedactor([], plain)({ x: shared, y: shared }).value).toEqual({ x: { v: 1 }, y: { v: 1 } });
  });

  it("caps depth with [Truncated] and does not overflow the stack on very deep input", () => {
    let deep: unknown = "leaf";
    for (let i = 0; i < 100_000; i += 1) deep = { d: deep };
    const result = compileRedactor([{ path: "$..leaf", mode: "mask" }], { hmacKey, maxDepth: 3 })(deep);
    expect(result.value).toEqual({ d: { d: { d: "[Truncated]" } } });
    expect(() => compileRedactor([{ path: "$", mode: "hash" }], { hmacKey })(deep)).not.toThrow();
  });

  it("treats __proto__ keys as plain data and returns JSON-serialisable plain objects", () => {
    const input = JSON.parse('{"__proto__": {"polluted": true, "card": "4111"}, "ok": 1}');
    const result = compileRedactor([{ path: "$['__proto__'].card", mode: "mask" }], plain)(input);
    const value = result.value as Record<string, unknown>;
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect((value as { polluted?: unknown }).polluted).toBeUndefined();
    expect(({} as { polluted?: unknown }).polluted).toBeUndefined();
    expect(JSON.parse(JSON.stringify(value))).toEqual(
      JSON.parse('{"__proto__": {"polluted": true, "card": "[REDACTED]"}, "ok": 1}'),
    );
    expect(result.fired).toEqual(["$['__proto__'].card:mask"]);
  });

  it("maps non-JSON values to JSON without throwing", () => {
    const throwing = {
      get boom() {
        throw new Error("getter");
      },
      fine: 1,
    };
    const proxy = new Proxy(
      {},
      {
        ownKeys() {
          throw new Error("trap");
        },
      },
    );
    const result = compileRedactor(
      [],
      plain,
    )({
      big: 10n,
      undef: undefined,
      fn: () => 1,
      sym: Symbol("s"),
      nan: Number.NaN,
      inf: Number.POSITIVE_INFINITY,
      date: new Date("2025-01-01T00:00:00Z"),
      map: new Map<unknown, unknown>([["k", 1]]),
      set: new Set(["a"]),
      buffer: Buffer.from("secret bytes"),
      error: new Error("bad thing"),
      throwing,
      proxy,
      list: [undefined, () => 1],
      badJson: {
        toJSON: () => {
          throw new Error("no");
        },
      },
    });
    expect(result.value).toEqual({
      big: "10",
      nan: null,
      inf: null,
      date: "2025-01-01T00:00:00.000Z",
      map: { k: 1 },
      set: ["a"],
      buffer: "[Binary 12 bytes]",
      error: { name: "Error", message: "bad thing" },
      throwing: { boom: "[Unreadable]", fine: 1 },
      proxy: "[Unreadable]",
      list: [null, null],
      badJson: "[Unreadable]",
    });
    expect(compileRedactor([], plain)(undefined).value).toBeUndefined();
  });

  it("canonical JSON matches RFC 8785 (canonicalize) on arbitrary JSON", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value, 1000)).toBe(canonicalize(value));
      }),
    );
  });
});

describe("compileRedactor: compile-time validation", () => {
  it.each([
    [
      [{ path: "card", mode: "mask" }],
      /redact\[0\] has an invalid path "card": path must start with '\$' at position 0/,
    ],
    [
      [
        { path: "$.a", mode: "mask" },
        { path: "$.a[", mode: "hash" },
      ],
      /redact\[1\] has an invalid path "\$\.a\["/,
    ],
    [[{ path: "$.a", mode: "erase" }], /redact\[0\] has mode "erase"; expected one of mask, hash, drop/],
    [[null], /redact\[0\] must be an object/],
  ])("rejects %j", (rules, message) => {
    expect(() => compileRedactor(rules as never, { hmacKey })).toThrow(RedactionRuleError);
    expect(() => compileRedactor(rules as never, { hmacKey })).toThrow(message);
  });

  it("names the rule index and path on the error", () => {
    try {
      compileRedactor([{ path: "$[?(@.x)]", mode: "mask" }], { hmacKey });
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ ruleIndex: 0, path: "$[?(@.x)]" });
    }
  });

  it.each([
    [undefined, /hmacKey is required/],
    [{ version: 0, secret: randomBytes(32) }, /version must be a positive integer/],
    [{ version: 1, secret: randomBytes(8) }, /at least 32 bytes/],
    [{ version: 1, secret: "text" }, /at least 32 bytes/],
  ])("rejects HMAC key %#", (key, message) => {
    expect(() => compileRedactor([], { hmacKey: key as never })).toThrow(message);
  });

  it("copies the HMAC secret so later changes to the caller's buffer do not change hashes", () => {
    const secret = randomBytes(32);
    const redact = compileRedactor([{ path: "$", mode: "hash" }], {
      hmacKey: { version: 1, secret },
      detectors: false,
    });
    const before = redact("x").value;
    secret.fill(0);
    expect(redact("x").value).toBe(before);
  });
});
