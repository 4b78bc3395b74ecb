import canonicalize from "canonicalize";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeRecord, type RecordFields, readLink, sealRecord } from "../src/chain/record.js";

const json = fc.jsonValue({ maxDepth: 3 });
const nullableString = fc.option(fc.string(), { nil: null });

const fields: fc.Arbitrary<RecordFields> = fc.record({
  id: fc.uuid(),
  kind: fc.constantFrom(
    "action",
    "approval.approved",
    "approval.denied",
    "approval.expired",
    "approval.released",
    "policy.changed",
  ),
  time: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  org: fc.string({ minLength: 1 }),
  agent: fc.string({ minLength: 1 }),
  delegation: fc.array(fc.string()),
  actionType: fc.string({ minLength: 1 }),
  tool: nullableString,
  framework: nullableString,
  args: json,
  argsHash: fc.string(),
  metadata: fc.option(fc.dictionary(fc.string(), json), { nil: null }),
  dataAccessed: json,
  status: nullableString,
  denialReason: nullableString,
  policyName: nullableString,
  policyHash: fc.string(),
  conditions: fc.array(
    fc.oneof(
      json,
      fc.record({
        policy: fc.string(),
        field: fc.string(),
        operator: fc.constantFrom("eq", "lt", "in"),
        expected: json,
        actual: json,
        result: fc.boolean(),
      }),
    ),
  ),
  approvalId: nullableString,
  traceId: nullableString,
  toolCallId: nullableString,
  mode: fc.constantFrom("enforce", "observe", "disabled"),
  shadow: fc.option(fc.record({ status: fc.string() }), { nil: null }),
  failOpen: fc.boolean(),
  reason: nullableString,
  redactionRules: fc.array(fc.string()),
}) as fc.Arbitrary<RecordFields>;

describe("record encoding", () => {
  it("is exactly the RFC 8785 canonical JSON of the record, and its link is readable without parsing", () => {
    fc.assert(
      fc.property(
        fields,
        fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString("hex")),
        fc.integer({ min: 1, max: 2 ** 40 }),
        (f, prev, seq) => {
          const { text } = sealRecord(encodeRecord(f), prev, seq);
          expect(text).toBe(canonicalize(JSON.parse(text)));
          const parsed = JSON.parse(text);
          expect(parsed).toMatchObject({ prev_hash: prev, seq, id: f.id });
          expect(readLink(text)).toEqual({ prevHash: prev, seq });
        },
      ),
      { numRuns: 300 },
    );
  });

  it("a caller-chosen args key named prev_hash cannot spoof the link", () => {
    const f = fc.sample(fields, 1)[0]!;
    const spoof = {
      ...f,
      args: { prev_hash: "f".repeat(64), seq: 1 },
      metadata: { prev_hash: "e".repeat(64) },
    };
    const prev = "a".repeat(64);
    expect(readLink(sealRecord(encodeRecord(spoof), prev, 7).text)).toEqual({ prevHash: prev, seq: 7 });
  });
});

describe("canonicalJson", () => {
  it("matches the reference canonicalize package on arbitrary JSON", async () => {
    const { canonicalJson } = await import("../src/chain/canonical-json.js");
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(canonicalize(value));
      }),
      { numRuns: 1000 },
    );
  });

  it("matches it on any UTF-16 string (lone surrogates, controls, quotes) and any double, as values and keys", async () => {
    const { canonicalJson } = await import("../src/chain/canonical-json.js");
    const anyString = fc.string({ unit: "binary", maxLength: 200 });
    const leaf = fc.oneof(anyString, fc.double(), fc.constantFrom(-0, 0, 1e21, 1e-7, Number.MAX_VALUE));
    const value = fc.oneof(
      leaf,
      fc.array(leaf, { maxLength: 5 }),
      fc.dictionary(anyString, leaf, { maxKeys: 20 }),
    );
    fc.assert(
      fc.property(value, (v) => {
        // canonicalize writes non-finite numbers as errors; JSON (and the engine) writes null.
        const expected = canonicalize(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(v)).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});
