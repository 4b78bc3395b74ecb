import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/chain/canonical-json.js";
import { sha256Hex } from "../src/chain/record.js";
import { ArgsHasher, SnapshotCanonicalizer } from "../src/chain/snapshot-json.js";

// The memos must be invisible: every answer equals the reference computed from scratch, whatever
// the order of repeats and changes.
describe("SnapshotCanonicalizer", () => {
  it("equals canonicalJson(JSON.parse(snapshot)) across runs of repeated and changing snapshots", () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 40 }),
        (pool, picks) => {
          const memo = new SnapshotCanonicalizer();
          for (const pick of picks) {
            const snapshot = JSON.stringify(pool[pick % pool.length]);
            expect(memo.canonical(snapshot)).toBe(canonicalJson(JSON.parse(snapshot)));
          }
        },
      ),
    );
  });

  it("treats equal text as equal even when the strings are different objects", () => {
    const memo = new SnapshotCanonicalizer();
    const first = JSON.stringify({ b: 1, a: [2, { d: 3, c: 4 }] });
    const again = JSON.stringify(JSON.parse(first));
    expect(memo.canonical(first)).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(memo.canonical(again)).toBe('{"a":[2,{"c":4,"d":3}],"b":1}');
    expect(memo.canonical("null")).toBe("null");
  });

  it("does not remember a snapshot it could not encode", () => {
    const memo = new SnapshotCanonicalizer();
    expect(memo.canonical('{"x":1}')).toBe('{"x":1}');
    expect(() => memo.canonical("{not json")).toThrow(SyntaxError);
    expect(() => memo.canonical("{not json")).toThrow(SyntaxError);
    expect(memo.canonical('{"x":1}')).toBe('{"x":1}');
  });
});

describe("ArgsHasher", () => {
  it("equals sha256: + sha256Hex(json) across runs of repeated and changing texts", () => {
    fc.assert(
      fc.property(
        fc.array(fc.jsonValue(), { minLength: 1, maxLength: 4 }),
        fc.array(fc.nat(), { minLength: 1, maxLength: 30 }),
        (pool, picks) => {
          const hasher = new ArgsHasher();
          for (const pick of picks) {
            const json = canonicalJson(pool[pick % pool.length]);
            expect(hasher.hash(json)).toBe(`sha256:${sha256Hex(json)}`);
          }
        },
      ),
    );
  });
});
