import { describe, expect, it } from "vitest";
import { globCovers, uncovered, validateCapabilities } from "../src/delegation/capabilities.js";

describe("capability globs: does the parent's glob cover the child's?", () => {
  it.each([
    ["**", "anything.at.all", true],
    ["**", "*", true],
    ["read.*", "read.file", true],
    ["read.*", "read.f*", true],
    ["read.*", "read.*", true],
    ["read.**", "read.*", true],
    ["read.**", "read.a.*.b", true],
    ["*", "read", true],
    ["read.*", "read.**", false],
    ["read.*", "read.a.b", false],
    ["read.*", "*", false],
    ["*", "a.b", false],
    ["*", "**", false],
    ["read.file", "read.*", false],
    ["read.f*", "read.*", false],
    ["pr.open", "pr.open", true],
    ["pr.open", "pr.merge", false],
    ["*.read", "x.read", true],
    ["*.read", "*.read", true],
    ["*.read", "**.read", false],
    ["a*c", "abc", true],
    ["a*c", "a*bc", true],
    ["a*c", "a.c", false],
  ])("%s covers %s: %s", (outer, inner, expected) => {
    expect(globCovers(outer, inner)).toBe(expected);
  });

  it("uncovered lists the child globs no parent glob covers", () => {
    expect(uncovered(["read.*", "search.web", "pay"], ["read.**", "search.*"])).toEqual(["pay"]);
  });

  it("validateCapabilities names the bad entry", () => {
    expect(validateCapabilities(["read.*", "read.*", "pr.open"])).toEqual(["read.*", "pr.open"]);
    expect(() => validateCapabilities(["read.*", "a b"])).toThrow(
      /capabilities\[1\] must not contain whitespace/,
    );
    expect(() => validateCapabilities(["a***"])).toThrow(/`\*\*\*` is not a wildcard/);
    expect(() => validateCapabilities("read.*")).toThrow(/non-empty array/);
  });
});
