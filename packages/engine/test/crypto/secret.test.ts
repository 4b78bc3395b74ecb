import { describe, expect, it } from "vitest";
import { KeyMaterialError } from "../../src/crypto/errors.js";
import { HmacKeySet } from "../../src/crypto/secret.js";

describe("HmacKeySet", () => {
  it("generates a 256-bit version-1 key", () => {
    const set = HmacKeySet.generate();
    expect(set.activeVersion).toBe(1);
    expect(set.activeKey().secret).toHaveLength(32);
  });

  it("rotates to a new version with a different secret and keeps the old one", () => {
    const set = HmacKeySet.generate();
    const first = set.activeKey();
    expect(set.rotate()).toBe(2);
    expect(set.activeKey().version).toBe(2);
    expect(Buffer.from(set.activeKey().secret).equals(Buffer.from(first.secret))).toBe(false);
    expect(set.key(1)?.secret).toEqual(first.secret);
    expect(set.key(7)).toBeUndefined();
  });

  it("round-trips through JSON", () => {
    const set = HmacKeySet.generate();
    set.rotate();
    const restored = HmacKeySet.fromJSON(JSON.parse(JSON.stringify(set.toJSON())));
    expect(restored.activeKey()).toEqual(set.activeKey());
    expect(restored.key(1)).toEqual(set.key(1));
  });

  it("picks the highest version as active whatever the stored order", () => {
    const data = HmacKeySet.generate().toJSON();
    const second = { ...data[0]!, version: 5, secret: Buffer.alloc(32, 7).toString("base64url") };
    expect(HmacKeySet.fromJSON([second, data[0]!]).activeVersion).toBe(5);
  });

  it.each([
    ["empty", [], /non-empty array/],
    ["bad version", [{ version: 0, secret: Buffer.alloc(32).toString("base64url") }], /positive integer/],
    ["short secret", [{ version: 1, secret: "AAAA" }], /at least 32 bytes/],
    ["padded secret", [{ version: 1, secret: Buffer.alloc(32).toString("base64") }], /base64url/],
    [
      "duplicate version",
      [
        { version: 1, secret: Buffer.alloc(32).toString("base64url") },
        { version: 1, secret: Buffer.alloc(32, 1).toString("base64url") },
      ],
      /duplicated/,
    ],
  ])("rejects %s", (_name, data, message) => {
    expect(() => HmacKeySet.fromJSON(data as never)).toThrow(KeyMaterialError);
    expect(() => HmacKeySet.fromJSON(data as never)).toThrow(message);
  });
});
