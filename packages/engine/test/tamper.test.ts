/**
 * Tampering behind the library's back: each test edits the real SQLite file through its own raw
 * `DatabaseSync` connection, then asks the engine to verify.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
import { agent, policy, tempDir } from "./helpers.js";
import { type DecisionEngine, openEngine, sha256HexForTests } from "./tamper-helpers.js";

const dir = tempDir();
let n = 0;

async function chainOf(count: number, checkpointInterval = 1000): Promise<{ file: string; ids: string[] }> {
  const file = join(dir, `chain-${n++}.db`);
  const engine = await openEngine({ policy, store: file, checkpointInterval });
  const ids: string[] = [];
  for (let i = 0; i < count; i++)
    ids.push((await engine.decide({ agent, actionType: "read.file", args: { i } })).auditEventId);
  await engine.close(); // writes a checkpoint over the head
  return { file, ids };
}

async function verifyFile(file: string) {
  const engine: DecisionEngine = await openEngine({ policy, store: file });
  try {
    return await engine.verify();
  } finally {
    await engine.close();
  }
}

function raw(file: string, fn: (db: DatabaseSync) => void): void {
  const db = new DatabaseSync(file);
  try {
    fn(db);
  } finally {
    db.close();
  }
}

describe("verify detects tampering in a SQLite file", () => {
  it("an untouched chain verifies", async () => {
    const { file } = await chainOf(10);
    expect(await verifyFile(file)).toEqual({ chainValid: true, checked: 10, firstBrokenAtRowId: null });
  });

  it("byte edit of a record", async () => {
    const { file, ids } = await chainOf(10);
    raw(file, (db) =>
      db
        .prepare("UPDATE audit_events SET record = replace(record, '\"i\":4', '\"i\":9') WHERE id = ?")
        .run(ids[4]!),
    );
    expect(await verifyFile(file)).toMatchObject({
      chainValid: false,
      checked: 4,
      firstBrokenAtRowId: ids[4],
    });
  });

  it("deletion of a record in the middle", async () => {
    const { file, ids } = await chainOf(10);
    raw(file, (db) => db.prepare("DELETE FROM audit_events WHERE id = ?").run(ids[3]!));
    const result = await verifyFile(file);
    expect(result).toMatchObject({ chainValid: false, checked: 3, firstBrokenAtRowId: ids[4] });
    expect(result.problem).toMatch(/missing|deleted/);
  });

  it("reordering two records", async () => {
    const { file, ids } = await chainOf(10);
    raw(file, (db) => {
      db.exec("UPDATE audit_events SET seq = -1 WHERE seq = 3");
      db.exec("UPDATE audit_events SET seq = 3 WHERE seq = 6");
      db.exec("UPDATE audit_events SET seq = 6 WHERE seq = -1");
    });
    expect(await verifyFile(file)).toMatchObject({
      chainValid: false,
      checked: 2,
      firstBrokenAtRowId: ids[5],
    });
  });

  it("insertion of a forged record", async () => {
    const { file, ids } = await chainOf(10);
    raw(file, (db) => {
      const row = db.prepare("SELECT * FROM audit_events WHERE seq = 5").get() as Record<
        string,
        string | number
      >;
      db.exec("UPDATE audit_events SET seq = seq + 1000 WHERE seq > 5");
      db.exec("UPDATE audit_events SET seq = seq - 999 WHERE seq > 1000");
      const text = String(row.record).replace('"i":4', '"i":44');
      db.prepare(
        "INSERT INTO audit_events (org, seq, id, hash, agent, action_type, record) VALUES (?, 6, 'forged', ?, ?, ?, ?)",
      ).run(row.org!, sha256HexForTests(text), row.agent!, row.action_type!, text);
    });
    const result = await verifyFile(file);
    expect(result).toMatchObject({ chainValid: false, checked: 5, firstBrokenAtRowId: "forged" });
    expect(ids).toHaveLength(10);
  });

  it("tail truncation (against the last signed checkpoint)", async () => {
    const { file } = await chainOf(10);
    raw(file, (db) => db.exec("DELETE FROM audit_events WHERE seq > 7"));
    const result = await verifyFile(file);
    expect(result).toMatchObject({ chainValid: false, checked: 7 });
    expect(result.problem).toMatch(/truncation/);
  });

  it("a re-hashed fork (history rewritten and every hash recomputed)", async () => {
    const { file } = await chainOf(10);
    raw(file, (db) => {
      const rows = db.prepare("SELECT seq, record FROM audit_events ORDER BY seq").all() as {
        seq: number;
        record: string;
      }[];
      let prev = "0".repeat(64);
      for (const row of rows) {
        let text = row.record.replace(/"prev_hash":"[0-9a-f]{64}"/, `"prev_hash":"${prev}"`);
        if (row.seq === 2) text = text.replace('"i":1', '"i":1000');
        const hash = sha256HexForTests(text);
        db.prepare("UPDATE audit_events SET record = ?, hash = ? WHERE seq = ?").run(text, hash, row.seq);
        prev = hash;
      }
    });
    const result = await verifyFile(file);
    expect(result).toMatchObject({ chainValid: false, checked: 10 });
    expect(result.problem).toMatch(/fork|re-hashed/);
  });

  it("a forged checkpoint signature", async () => {
    const { file } = await chainOf(5);
    raw(file, (db) =>
      db.exec("UPDATE checkpoints SET size = 4, head_hash = (SELECT hash FROM audit_events WHERE seq = 4)"),
    );
    const result = await verifyFile(file);
    expect(result).toMatchObject({ chainValid: false });
    expect(result.problem).toMatch(/signature/);
  });
});
