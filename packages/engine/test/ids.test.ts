import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isoFromMs, nowWithIso, uuidv7, uuidv7TimePrefix } from "../src/ids.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe("uuidv7", () => {
  it("is an RFC 9562 version 7 UUID whose first 48 bits are the current millisecond", () => {
    const before = Date.now();
    const id = uuidv7();
    const after = Date.now();
    expect(id).toMatch(UUID_V7);
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(after);
  });

  it("stays well-formed and unique across many refills of its random pool", () => {
    const ids = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      const id = uuidv7();
      expect(id).toMatch(UUID_V7);
      ids.add(id);
    }
    expect(ids.size).toBe(20_000);
  });

  it("uses every variant value and every random nibble position (no stuck bits)", () => {
    const variants = new Set<string>();
    const seen = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 5_000; i++) {
      const id = uuidv7();
      variants.add(id[19]!);
      for (let at = 15; at < 36; at++) seen[at]!.add(id[at]!);
    }
    expect([...variants].sort()).toEqual(["8", "9", "a", "b"]);
    for (const at of [15, 16, 17, 20, 21, 22, 24, 30, 35]) expect(seen[at]!.size).toBe(16);
  });
});

describe("nowWithIso", () => {
  it("gives the millisecond and its ISO 8601 text", () => {
    const { ms, iso } = nowWithIso();
    expect(new Date(iso).getTime()).toBe(ms);
  });
});

/** The reference formatters the fast ones must equal. */
const referencePrefix = (ms: number) => {
  const hex = ms.toString(16).padStart(12, "0");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-7`;
};
/** Milliseconds from 1970 to 10889 (48 bits), where UUIDv7's time field ends. */
const anyMs = fc.integer({ min: 0, max: 2 ** 48 - 1 });
/** Runs of consecutive milliseconds, so cached parts are reused and rolled over. */
const runs = fc.tuple(anyMs, fc.integer({ min: 1, max: 3000 }));
/** Millisecond instants around second, day, year and 65.5 s (0x10000 ms) boundaries. */
const boundaries = [
  0,
  999,
  1000,
  65_535,
  65_536,
  86_399_999,
  86_400_000,
  Date.UTC(2024, 1, 28, 23, 59, 59, 999),
  Date.UTC(2024, 1, 29, 0, 0, 0, 0),
  Date.UTC(2100, 1, 28, 23, 59, 59, 999),
  Date.UTC(2100, 2, 1),
  Date.UTC(9999, 11, 31, 23, 59, 59, 999),
  0x10000 * 0xffffffff,
  2 ** 48 - 1,
];

describe("cached time formatters", () => {
  it("uuidv7TimePrefix equals the hex of the 48-bit time, on boundaries and in runs", () => {
    for (const ms of boundaries)
      for (const d of [-1, 0, 1]) {
        if (ms + d >= 0 && ms + d < 2 ** 48) expect(uuidv7TimePrefix(ms + d)).toBe(referencePrefix(ms + d));
      }
    fc.assert(
      fc.property(runs, ([start, length]) => {
        for (let ms = start; ms < Math.min(start + length, 2 ** 48); ms++) {
          if (uuidv7TimePrefix(ms) !== referencePrefix(ms)) return false;
        }
        return true;
      }),
    );
  });

  it("isoFromMs equals Date#toISOString, including years beyond 9999 and before 1970", () => {
    for (const ms of [...boundaries, -1, -1000, -62_167_219_200_001, 8.64e15]) {
      expect(isoFromMs(ms)).toBe(new Date(ms).toISOString());
    }
    fc.assert(
      fc.property(
        fc.integer({ min: -8.64e15, max: 8.64e15 }),
        fc.integer({ min: 1, max: 2500 }),
        (start, length) => {
          for (let ms = start; ms < Math.min(start + length, 8.64e15); ms++) {
            if (isoFromMs(ms) !== new Date(ms).toISOString()) return false;
          }
          return true;
        },
      ),
      { numRuns: 200 },
    );
  });

  it("uuidv7 ids made in one millisecond carry that millisecond", () => {
    const id = uuidv7();
    const ms = Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
    expect(id.slice(0, 15)).toBe(referencePrefix(ms));
  });
});
