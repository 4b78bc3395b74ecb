/** The bounded memo core and the adapters share (`@aa/core/adapter-kit`): eviction order, deletes. */
import { describe, expect, it } from "vitest";
import { BoundedMemo } from "../src/adapter-kit.js";

const keysOf = (memo: BoundedMemo<string, number>, candidates: string[]) =>
  candidates.filter((key) => memo.has(key));

describe("BoundedMemo", () => {
  it("keeps the last `limit` keys, evicting in insertion order; set on a held key keeps its place", () => {
    const memo = new BoundedMemo<string, number>(3);
    for (const [i, key] of ["a", "b", "c"].entries()) memo.set(key, i);
    memo.set("a", 10); // already held: new value, still the oldest
    memo.set("d", 3);
    expect(keysOf(memo, ["a", "b", "c", "d"])).toEqual(["b", "c", "d"]);
    expect(memo.size).toBe(3);
    memo.set("e", 4);
    expect(keysOf(memo, ["b", "c", "d", "e"])).toEqual(["c", "d", "e"]);
    expect(memo.get("e")).toBe(4);
  });

  it("a deleted key leaves room, and deleting then setting a key makes it the newest", () => {
    const memo = new BoundedMemo<string, number>(3);
    memo.set("a", 0).set("b", 1).set("c", 2);
    expect(memo.delete("b")).toBe(true);
    expect(memo.delete("b")).toBe(false);
    memo.set("d", 3); // room left by b: nothing evicted
    expect(keysOf(memo, ["a", "c", "d"])).toEqual(["a", "c", "d"]);
    memo.delete("a");
    memo.set("a", 4); // a is now the newest
    memo.set("e", 5); // evicts c, the oldest
    expect(keysOf(memo, ["a", "c", "d", "e"])).toEqual(["a", "d", "e"]);
    memo.set("f", 6); // then d
    expect(keysOf(memo, ["a", "d", "e", "f"])).toEqual(["a", "e", "f"]);
  });

  it("keeps the order through many more deletes than its limit (the ring compacts)", () => {
    const limit = 100;
    const memo = new BoundedMemo<string, number>(limit);
    const model = new Map<string, number>(); // the old Map + keys().next() eviction, as reference
    const put = (key: string, value: number) => {
      if (!model.has(key) && model.size >= limit) model.delete(model.keys().next().value as string);
      model.set(key, value);
      memo.set(key, value);
    };
    for (let i = 0; i < 5_000; i++) {
      put(`k${i % 173}`, i);
      if (i % 3 === 0) {
        model.delete(`k${(i * 7) % 173}`);
        memo.delete(`k${(i * 7) % 173}`);
      }
      if (i % 5 === 0) {
        const key = `k${(i * 11) % 173}`;
        model.delete(key);
        memo.delete(key);
        put(key, -i);
      }
      put(`u${i}`, i);
    }
    expect(memo.size).toBe(model.size);
    for (const [key, value] of model) expect(memo.get(key)).toBe(value);
    // Evicting from here goes through the model's order exactly.
    const order = [...model.keys()];
    for (let i = 0; i < limit; i++) {
      memo.set(`fresh${i}`, i);
      expect(memo.has(order[i] as string)).toBe(false);
      if (i + 1 < order.length) expect(memo.has(order[i + 1] as string)).toBe(true);
    }
  });

  it("clear empties it and it fills again", () => {
    const memo = new BoundedMemo<string, number>(2);
    memo.set("a", 0).set("b", 1).set("c", 2);
    memo.clear();
    expect(memo.size).toBe(0);
    memo.set("x", 0).set("y", 1).set("z", 2);
    expect(keysOf(memo, ["a", "b", "c", "x", "y", "z"])).toEqual(["y", "z"]);
  });

  it("refuses a limit that is not a positive integer", () => {
    expect(() => new BoundedMemo(0)).toThrow(/positive integer, got 0/);
    expect(() => new BoundedMemo(1.5)).toThrow(RangeError);
  });
});
