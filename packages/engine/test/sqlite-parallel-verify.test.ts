/**
 * The worker-thread verification path (large chains), exercised on a small chain by lowering the
 * threshold. Uses the built package: worker threads load compiled JavaScript.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { afterEach, describe, expect, it } from "vitest";
// Compiled output on purpose: the verify workers run compiled JavaScript.
import { openEngine } from "../dist/index.js";
import { verifyTuning } from "../dist/store/sqlite.js";
import { agent, policy, tempDir } from "./helpers.js";

const dir = tempDir();
let n = 0;
const defaults = { ...verifyTuning };
afterEach(() => {
  Object.assign(verifyTuning, defaults);
});

async function chain(count: number): Promise<string> {
  const file = join(dir, `p-${n++}.db`);
  const engine = await openEngine({ policy, store: file });
  await Promise.all(
    Array.from({ length: count }, (_, i) => engine.decide({ agent, actionType: "read.file", args: { i } })),
  );
  await engine.close();
  return file;
}

/** Verifies with the worker path on, in ranges of `rangeRows` records. */
async function verify(file: string, rangeRows = 20) {
  verifyTuning.parallelMinRows = 10;
  verifyTuning.minRangeRows = rangeRows;
  const engine = await openEngine({ policy, store: file });
  try {
    return await engine.verify();
  } finally {
    await engine.close();
  }
}

describe("parallel verify (worker threads)", () => {
  it("verifies a valid chain split across workers", async () => {
    expect(await verify(await chain(41))).toEqual({
      chainValid: true,
      checked: 41,
      firstBrokenAtRowId: null,
    });
  });

  it("catches a deletion exactly at a range boundary", async () => {
    const file = await chain(40);
    const db = new DatabaseSync(file);
    const next = db.prepare("SELECT id FROM audit_events WHERE seq = 22").get() as { id: string };
    db.exec("DELETE FROM audit_events WHERE seq = 21");
    db.close();
    const result = await verify(file);
    expect(result.chainValid).toBe(false);
    expect([next.id, ""]).toContain(result.firstBrokenAtRowId);
  });

  it("catches an edit inside the second range", async () => {
    const file = await chain(40);
    const db = new DatabaseSync(file);
    const row = db.prepare("SELECT id FROM audit_events WHERE seq = 33").get() as { id: string };
    db.exec(
      "UPDATE audit_events SET record = replace(record, '\"read.file\"', '\"read.fil3\"') WHERE seq = 33",
    );
    db.close();
    expect(await verify(file)).toMatchObject({ chainValid: false, firstBrokenAtRowId: row.id });
  });

  it("verifies more ranges than workers, each worker taking the next one from the queue", async () => {
    const file = await chain(83);
    // 14 or more ranges (at least 5 records each, 8 per worker) on 2-4 workers.
    expect(await verify(file, 5)).toEqual({ chainValid: true, checked: 83, firstBrokenAtRowId: null });
  });

  it("reports the first break when later ranges are queued, and at a boundary deep in the queue", async () => {
    const file = await chain(60);
    const db = new DatabaseSync(file);
    const edited = db.prepare("SELECT id FROM audit_events WHERE seq = 27").get() as { id: string };
    db.exec(
      "UPDATE audit_events SET record = replace(record, '\"read.file\"', '\"read.fil3\"') WHERE seq IN (27, 52)",
    );
    db.close();
    expect(await verify(file, 5)).toMatchObject({ chainValid: false, firstBrokenAtRowId: edited.id });

    const deleted = await chain(60);
    const db2 = new DatabaseSync(deleted);
    const after = db2.prepare("SELECT id FROM audit_events WHERE seq = 47").get() as { id: string };
    // Ranges of five on up to 4 workers (60 / 8 per worker <= 5): seq 46 starts the tenth, so the
    // gap is seen across a range boundary.
    db2.exec("DELETE FROM audit_events WHERE seq = 46");
    db2.close();
    const result = await verify(deleted, 5);
    expect(result.chainValid).toBe(false);
    expect([after.id, ""]).toContain(result.firstBrokenAtRowId);
  });
});
