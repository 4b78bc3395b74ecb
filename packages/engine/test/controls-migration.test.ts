/**
 * Stores written before the kill switch existed gain `agent_controls` through a new migration on
 * the next open, keep their chain, and then enforce containment (SQLite and PostgreSQL).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";
import { PG_URL, pgSchemaUrl } from "./pg.js";

async function containAfterUpgrade(store: string, orgId: string) {
  const engine = await openEngine({ policy, store, orgId });
  expect(await engine.listAgentControls()).toEqual([]);
  await engine.contain(agent.id, "ops", "after upgrade");
  expect(await engine.decide({ agent, actionType: "read.file" })).toMatchObject({
    denialReason: "CIRCUIT_OPEN",
  });
  expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 3 });
  await engine.close();
}

describe("agent_controls migration", () => {
  it("SQLite: a version-2 file migrates to version 3", async () => {
    const file = join(tempDir(), "v2.db");
    const first = await openEngine({ policy, store: file });
    await first.decide({ agent, actionType: "read.file" });
    await first.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(file);
    db.exec("DROP TABLE agent_controls; DELETE FROM schema_version WHERE version > 2;");
    db.close();
    await containAfterUpgrade(file, "default");
    const check = new DatabaseSync(file);
    expect(check.prepare("SELECT MAX(version) AS v FROM schema_version").get()).toEqual({ v: 3 });
    check.close();
  });

  const pgUrl = pgSchemaUrl();
  it("PostgreSQL: a version-3 schema migrates to version 4", async () => {
    const url = pgUrl();
    const orgId = `org-${randomUUID()}`;
    const first = await openEngine({ policy, store: url, orgId });
    await first.decide({ agent, actionType: "read.file" });
    await first.close();
    const schema = new URL(url).searchParams.get("schema")!;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(
      `DROP TABLE ${schema}.agent_controls; DELETE FROM ${schema}.schema_version WHERE version > 3`,
    );
    await containAfterUpgrade(url, orgId);
    const { rows } = await client.query(`SELECT MAX(version) AS v FROM ${schema}.schema_version`);
    expect(rows[0]).toEqual({ v: 4 });
    await client.end();
  });
});
