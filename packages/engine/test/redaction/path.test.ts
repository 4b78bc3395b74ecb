import { describe, expect, it } from "vitest";
import { PathSyntaxError, parsePath } from "../../src/redaction/path.js";

describe("parsePath", () => {
  it.each([
    ["$", []],
    [
      "$.a.b",
      [
        { selector: { kind: "name", name: "a" }, descendant: false },
        { selector: { kind: "name", name: "b" }, descendant: false },
      ],
    ],
    [
      "$.a[0]",
      [
        { selector: { kind: "name", name: "a" }, descendant: false },
        { selector: { kind: "index", index: 0 }, descendant: false },
      ],
    ],
    [
      "$.a[-1]",
      [
        { selector: { kind: "name", name: "a" }, descendant: false },
        { selector: { kind: "index", index: -1 }, descendant: false },
      ],
    ],
    [
      "$.a[*].b",
      [
        { selector: { kind: "name", name: "a" }, descendant: false },
        { selector: { kind: "wildcard" }, descendant: false },
        { selector: { kind: "name", name: "b" }, descendant: false },
      ],
    ],
    ["$..name", [{ selector: { kind: "name", name: "name" }, descendant: true }]],
    ["$..*", [{ selector: { kind: "wildcard" }, descendant: true }]],
    ["$..[2]", [{ selector: { kind: "index", index: 2 }, descendant: true }]],
    ["$['weird key']", [{ selector: { kind: "name", name: "weird key" }, descendant: false }]],
    ['$["it\'s"]', [{ selector: { kind: "name", name: "it's" }, descendant: false }]],
    ["$['a\\'b']", [{ selector: { kind: "name", name: "a'b" }, descendant: false }]],
    ["$.x-api-key", [{ selector: { kind: "name", name: "x-api-key" }, descendant: false }]],
    ["$[ 'a' ]", [{ selector: { kind: "name", name: "a" }, descendant: false }]],
  ])("parses %s", (path, steps) => {
    expect(parsePath(path)).toEqual(steps);
  });

  it.each([
    ["a.b", /must start with '\$'/, 0],
    ["", /must start with '\$'/, 0],
    ["$.", /expected a member name.*end of path/, 2],
    ["$..", /expected a member name, '\*' or '\['/, 3],
    ["$.a[", /expected '\*', a quoted name or an index/, 4],
    ["$.a[0", /expected '\]'/, 5],
    ["$['a", /unterminated quoted name/, 2],
    ["$[?(@.x)]", /filter expressions/, 2],
    ["$[0,1]", /unions are not supported/, 3],
    ["$[0:2]", /slices are not supported/, 3],
    ["$a", /unexpected 'a'/, 1],
    ["$['a\\n']", /escapes/, 4],
    ["$[01]", /expected '\]'/, 3],
  ])("rejects %s", (path, message, position) => {
    try {
      parsePath(path);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PathSyntaxError);
      expect((error as PathSyntaxError).message).toMatch(message);
      expect((error as PathSyntaxError).position).toBe(position);
    }
  });
});
