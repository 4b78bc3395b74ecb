import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";

export const PG_URL = process.env.AA_TEST_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";

/**
 * Gives each call a PostgreSQL schema of its own (`?schema=`), all dropped after the file's tests.
 * Fails (never skips) when PostgreSQL is down.
 */
export function pgSchemas(): () => string {
  const created: string[] = [];
  beforeAll(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    try {
      await client.connect();
      await client.query("SELECT 1");
    } catch (error) {
      throw new Error(
        `PostgreSQL is not reachable at ${PG_URL} (${(error as Error).message}). Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`,
      );
    } finally {
      await client.end().catch(() => undefined);
    }
  });
  afterAll(async () => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    for (const schema of created) await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  });
  return () => {
    const schema = `aa_gw_test_${randomBytes(6).toString("hex")}`;
    created.push(schema);
    return `${PG_URL}?schema=${schema}`;
  };
}
