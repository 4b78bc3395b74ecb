import { describe, expect, it } from "vitest";
import { loadFixtures } from "./contract.js";
import { pgSchemas } from "./pg.js";
import { replayFixture } from "./replay.js";

const schemaUrl = pgSchemas();

describe("wire-contract fixtures replayed against a gateway on PostgreSQL", () => {
  for (const fixture of loadFixtures()) {
    it(`${fixture.name}: every response as recorded and as the OpenAPI file says`, async () => {
      const problems = await replayFixture(fixture, schemaUrl());
      expect(problems).toEqual([]);
    });
  }
});
