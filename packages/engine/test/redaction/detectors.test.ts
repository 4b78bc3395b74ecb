import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compileRedactor, redactSecretsInString } from "../../src/redaction/index.js";
import { CANARIES, type Canary, ENCODED_CANARIES, leaks } from "./canaries.js";

const hmacKey = { version: 1, secret: randomBytes(32) };
const redact = compileRedactor([], { hmacKey });

describe("built-in detectors", () => {
  for (const canary of [...CANARIES, ...ENCODED_CANARIES]) {
    it(`masks ${canary.name} and reports detector:${canary.detector}`, () => {
      const result = redact({ note: `see ${canary.text} here` });
      expect(leaks(result.value, [canary])).toEqual([]);
      expect(result.fired).toEqual([`detector:${canary.detector}`]);
    });
  }

  it("masks only the secret part, keeping the context", () => {
    expect(redact("postgres://app:hunter2hunter2@db:5432/prod").value).toBe(
      "postgres://app:[REDACTED:connection-string]@db:5432/prod",
    );
    expect(redact("Authorization: Bearer abc123def456ghi789").value).toBe(
      "Authorization: Bearer [REDACTED:bearer-token]",
    );
    expect(redact("export API_KEY=abc123xyz; next").value).toBe("export API_KEY=[REDACTED:credential]; next");
  });

  it("finds secrets everywhere: deep, in arrays, under __proto__ keys, in object keys", () => {
    let deep: unknown = { leaf: CANARIES[0]!.text };
    for (let i = 0; i < 40; i += 1) deep = { level: deep, list: [i] };
    const input = {
      deep,
      array: CANARIES.map((canary) => [canary.text]),
      proto: JSON.parse(`{"__proto__": {"x": ${JSON.stringify(CANARIES[2]!.text)}}}`),
      keyed: { [CANARIES[3]!.text]: "value" },
      encoded: ENCODED_CANARIES.map((canary) => canary.text),
    };
    const result = redact(input);
    expect(leaks(result.value, [...CANARIES, ...ENCODED_CANARIES])).toEqual([]);
    expect(JSON.stringify(result.value)).toContain('"[REDACTED:github-token]":"value"');
    expect(new Set(result.fired)).toEqual(
      new Set([...CANARIES, ...ENCODED_CANARIES].map((canary) => `detector:${canary.detector}`)),
    );
  });

  it("masks scalar values of secret-named fields whatever they look like", () => {
    const result = redact({
      password: "x1",
      Authorization: "anything at all",
      api_key: 12345,
      token: null,
      tokens: 5,
    });
    expect(result.value).toEqual({
      password: "[REDACTED:secret-field]",
      Authorization: "[REDACTED:secret-field]",
      api_key: "[REDACTED:secret-field]",
      token: null,
      tokens: 5,
    });
    expect(result.fired).toEqual(["detector:secret-field"]);
  });

  it("leaves ordinary text, identifiers and hashes alone", () => {
    const ordinary = [
      "Please open a PR for the monkey-patching fix",
      "550e8400-e29b-41d4-a716-446655440000",
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      "https://example.com:8443/path?q=1",
      "the task-management-system-design doc",
      "bearer bonds",
      "basic understanding of tokens",
      "SGVsbG8sIHdvcmxkISBUaGlzIGlzIGp1c3QgdGV4dC4=",
    ];
    const result = redact(ordinary);
    expect(result).toEqual({ value: ordinary, fired: [] });
  });

  it("can be turned off", () => {
    const off = compileRedactor([], { hmacKey, detectors: false });
    expect(off({ password: "p", note: CANARIES[0]!.text })).toEqual({
      value: { password: "p", note: CANARIES[0]!.text },
      fired: [],
    });
  });

  it("rules take precedence over detectors on the values they select", () => {
    const withRule = compileRedactor([{ path: "$.password", mode: "hash" }], { hmacKey });
    const result = withRule({ password: "p", other: CANARIES[0]!.text });
    expect(result.value).toEqual({
      password: expect.stringMatching(/^hmac-sha256:v1:/),
      other: "[REDACTED:api-key]",
    });
    expect(result.fired).toEqual(["$.password:hash", "detector:api-key"]);
  });

  it("masks an unterminated PEM block to the end of the string", () => {
    const pem = CANARIES.find((canary) => canary.name === "rsa pem")!;
    const cut = pem.text.slice(0, pem.text.length / 2);
    const out = redactSecretsInString(`key: ${cut}`, () => {});
    expect(out).toBe("key: [REDACTED:private-key]");
  });

  it("stays linear on adversarial input (no catastrophic backtracking)", () => {
    const adversarial = [
      "eyJ".repeat(50_000),
      `${"a".repeat(100_000)}!`,
      `sk-${"a".repeat(100_000)}`,
      `password${" ".repeat(50_000)}=`,
      `-----BEGIN ${"A".repeat(100_000)}`,
      `x://${"u".repeat(50_000)}:${"p".repeat(50_000)}`,
      `Bearer ${"=".repeat(100_000)}`,
      "AAAA".repeat(50_000),
    ];
    for (const text of adversarial) {
      // Completes (a super-linear regex would hang here); the result is still a string.
      expect(typeof redactSecretsInString(text, () => {})).toBe("string");
    }
  });
});

describe("property: redaction never throws and never leaks a planted canary", () => {
  const all: Canary[] = [...CANARIES, ...ENCODED_CANARIES];
  const canaryArb = fc.constantFrom(...all);
  const wordArb = fc.string({ maxLength: 12 });
  // A string holding a canary between ordinary words, as secrets appear in tool arguments.
  const plantedArb = fc
    .tuple(wordArb, canaryArb, wordArb)
    .map(([before, canary, after]) => ({ text: `${before} ${canary.text} ${after}`, canary }));
  const keyArb = fc.oneof(
    fc.string({ maxLength: 10 }),
    fc.constantFrom("__proto__", "constructor", "password", "data"),
  );

  const treeArb = fc.letrec((tie) => ({
    node: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.oneof(
        fc.string(),
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.constant(undefined),
        fc.bigInt(),
      ),
      plantedArb,
      fc.array(tie("node"), { maxLength: 4 }),
      fc.array(fc.tuple(keyArb, tie("node")), { maxLength: 4 }),
    ),
  })).node;

  type Planted = { text: string; canary: Canary };
  function materialise(node: unknown, planted: Canary[]): unknown {
    if (Array.isArray(node)) {
      if (node.every((entry) => Array.isArray(entry) && entry.length === 2 && typeof entry[0] === "string")) {
        const out: Record<string, unknown> = {};
        for (const [key, child] of node as Array<[string, unknown]>) {
          Object.defineProperty(out, key, {
            value: materialise(child, planted),
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return out;
      }
      return node.map((child) => materialise(child, planted));
    }
    if (node !== null && typeof node === "object" && "canary" in (node as object)) {
      planted.push((node as Planted).canary);
      return (node as Planted).text;
    }
    return node;
  }

  it("holds for random trees with planted canaries and random rules", () => {
    const ruleArb = fc.array(
      fc.record({
        path: fc.constantFrom("$", "$.data", "$..password", "$[*]", "$..*.x", "$['__proto__']", "$[0]"),
        mode: fc.constantFrom("mask" as const, "hash" as const, "drop" as const),
      }),
      { maxLength: 3 },
    );
    fc.assert(
      fc.property(treeArb, ruleArb, (tree, rules) => {
        const planted: Canary[] = [];
        const value = materialise(tree, planted);
        const result = compileRedactor(rules, { hmacKey })(value);
        expect(leaks(result.value, planted)).toEqual([]);
        expect(() => JSON.stringify(result.value)).not.toThrow();
        expect(new Set(result.fired).size).toBe(result.fired.length);
      }),
      { numRuns: 300 },
    );
  });

  it("never throws on arbitrary values", () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withSparseArray: true,
          withNullPrototype: true,
          withObjectString: true,
        }),
        (value) => {
          const result = redact(value);
          expect(() => JSON.stringify(result.value)).not.toThrow();
        },
      ),
      { numRuns: 300 },
    );
  });
});
