/**
 * The worker-thread verification path (large chains), exercised on a small chain by lowering the
 * threshold. Uses the built package: worker threads load compiled JavaScript.
 */
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { describe, expect, it } from "vitest";
// Compiled output on purpose: the verify workers run compiled JavaScript.
import { openEngine } from "../dist/index.js";
import { verifyTuning } from "../dist/store/sqlite.js";
import { agent, policy, tempDir } from "./helpers.js";

const dir = tempDir();
let n = 0;

async function chain(count: number): Promise<string> {
  const file = join(dir, `p-${n++}.db`);
  const engine = await openEngine({ policy, store: file });
  await Promise.all(
    Array.from({ length: count }, (_, i) => engine.decide({ agent, actionType: "read.file", args: { i } })),
  );
  await engine.close();
  return file;
}

async function verify(file: string) {
  verifyTuning.parallelMinRows = 10;
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
});
