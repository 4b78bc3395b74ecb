/**
 * Stores written before the kill switch and the delegation registry existed gain `agent_controls`
 * and `delegations` through the later migrations on the next open, keep their chain, and then
 * enforce containment and delegation (SQLite and PostgreSQL).
 */
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openEngine, SQLITE_MIGRATIONS } from "../src/index.js";
import { POSTGRES_MIGRATIONS } from "../src/store/postgres/migrations.js";
import { agent, policy, tempDir } from "./helpers.js";
import { PG_URL, pgSchemaUrl } from "./pg.js";

async function containAfterUpgrade(store: string, orgId: string) {
  const engine = await openEngine({ policy, store, orgId });
  expect(await engine.listAgentControls()).toEqual([]);
  await engine.contain(agent.id, "ops", "after upgrade");
  expect(await engine.decide({ agent, actionType: "read.file" })).toMatchObject({
    denialReason: "CIRCUIT_OPEN",
  });
  const { token } = await engine.delegate({ agentId: "root" }, "helper", { capabilities: ["read.*"] });
  expect(
    await engine.decide({ agent: { id: "root" }, actionType: "read.file", delegationToken: token }),
  ).toMatchObject({ status: "executed" });
  expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 5 });
  await engine.close();
}

describe("agent_controls and delegations migrations", () => {
  it("SQLite: a version-2 file migrates to the latest version", async () => {
    const file = join(tempDir(), "v2.db");
    const first = await openEngine({ policy, store: file });
    await first.decide({ agent, actionType: "read.file" });
    await first.close();
    const { DatabaseSync } = await import("node:sqlite");
    const db = new DatabaseSync(file);
    db.exec(
      "DROP TABLE agent_controls; DROP TABLE delegations; DELETE FROM schema_version WHERE version > 2;",
    );
    db.close();
    await containAfterUpgrade(file, "default");
    const check = new DatabaseSync(file);
    expect(check.prepare("SELECT MAX(version) AS v FROM schema_version").get()).toEqual({
      v: SQLITE_MIGRATIONS.length,
    });
    check.close();
  });

  const pgUrl = pgSchemaUrl();
  it("PostgreSQL: a version-3 schema migrates to the latest version", async () => {
    const url = pgUrl();
    const orgId = `org-${randomUUID()}`;
    const first = await openEngine({ policy, store: url, orgId });
    await first.decide({ agent, actionType: "read.file" });
    await first.close();
    const schema = new URL(url).searchParams.get("schema")!;
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    await client.query(
      `DROP TABLE ${schema}.agent_controls; DROP TABLE ${schema}.delegations; DROP TABLE ${schema}.counters;
       DROP FUNCTION ${schema}.aa_take_counters; DROP FUNCTION ${schema}.aa_give_counters;
       DROP FUNCTION ${schema}.aa_sweep_counters;
       DELETE FROM ${schema}.schema_version WHERE version > 3`,
    );
    await containAfterUpgrade(url, orgId);
    const { rows } = await client.query(`SELECT MAX(version) AS v FROM ${schema}.schema_version`);
    expect(rows[0]).toEqual({ v: POSTGRES_MIGRATIONS.length });
    await client.end();
  });
});
