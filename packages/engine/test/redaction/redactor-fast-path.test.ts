import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { HmacKeySet } from "../../src/crypto/secret.js";
import { compileRedactor, REDACTED } from "../../src/redaction/index.js";

const hmacKey = HmacKeySet.generate().activeKey();

// Plain JSON data that nothing changes is returned as is (no copy); everything else is copied.
describe("compileRedactor: unchanged input is not copied", () => {
  it("returns the input itself when no rule or detector fires", () => {
    const redact = compileRedactor([{ path: "$.card", mode: "mask" }], { hmacKey });
    const input = { title: "Fix typo", nested: { list: [1, "two", null, true] }, n: 1.5 };
    const out = redact(input);
    expect(out.value).toBe(input);
    expect(out.fired).toEqual([]);
  });

  it("copies when a rule, a secret-named field or a detector fires, and never mutates the input", () => {
    const redact = compileRedactor([{ path: "$.card", mode: "mask" }], { hmacKey });
    for (const input of [
      { card: "4111", title: "x" },
      { nested: { password: "hunter22" } },
      { note: "Authorization: Bearer abcdefghijklmnop1234" },
      { "token=abcdef123456": 1 },
    ]) {
      const before = JSON.stringify(input);
      const out = redact(input);
      expect(out.value).not.toBe(input);
      expect(out.fired.length).toBeGreaterThan(0);
      expect(JSON.stringify(input)).toBe(before);
    }
    expect((redact({ card: "4111" }).value as { card: string }).card).toBe(REDACTED);
  });

  it("copies values that are not plain JSON data (and normalises them as before)", () => {
    const redact = compileRedactor([], { hmacKey });
    const withDate = { at: new Date(0) };
    expect(redact(withDate).value).toEqual({ at: "1970-01-01T00:00:00.000Z" });
    const withUndefined = { a: undefined, b: [undefined] };
    expect(redact(withUndefined).value).toEqual({ b: [null] });
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    expect(redact(cyclic).value).toEqual({ a: 1, self: "[Circular]" });
    const nonFinite = { n: Number.NaN };
    expect(redact(nonFinite).value).toEqual({ n: null });
    const withProto = JSON.parse('{"__proto__": {"x": 1}}');
    expect(redact(withProto).value).not.toBe(withProto);
  });

  it("gives the same result on the fast path as on the copying walk (property)", () => {
    for (const rules of [[], [{ path: "$..secret_value", mode: "hash" as const }]]) {
      const redact = compileRedactor(rules, { hmacKey });
      fc.assert(
        fc.property(fc.jsonValue(), (value) => {
          const direct = redact(value).value;
          // The Date forces the copying walk for the whole wrapper, including `wrapped`.
          const copied = (redact({ wrapped: value, forced: new Date(0) }).value as { wrapped: unknown })
            .wrapped;
          expect(direct).toEqual(copied);
        }),
        { numRuns: 300 },
      );
    }
  });
});
