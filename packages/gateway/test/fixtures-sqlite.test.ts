import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadFixtures } from "./contract.js";
import { replayFixture } from "./replay.js";

const dir = mkdtempSync(join(tmpdir(), "aa-gateway-fixtures-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("wire-contract fixtures replayed against a gateway on SQLite", () => {
  const fixtures = loadFixtures();
  it("has the fixtures the client replays too", () => {
    expect(fixtures.map((f) => f.name)).toEqual([
      "actions",
      "approvals",
      "audit",
      "auth-errors",
      "delegations",
      "keys",
      "outcomes",
      "service",
    ]);
  });
  for (const fixture of fixtures) {
    it(`${fixture.name}: every response as recorded and as the OpenAPI file says`, async () => {
      const problems = await replayFixture(fixture, `sqlite:${join(dir, `${fixture.name}.db`)}`);
      expect(problems).toEqual([]);
    });
  }
});
