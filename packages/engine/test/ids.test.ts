import { describe, expect, it } from "vitest";
import { nowWithIso, uuidv7 } from "../src/ids.js";

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
