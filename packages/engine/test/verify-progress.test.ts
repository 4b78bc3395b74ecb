/**
 * `verify({ onProgress })` and `exportAudit(target, { onProgress })` on every store: reports are
 * per chunk, `checked` never goes back, never passes `total`, and a complete pass ends at
 * `checked === total` (the chain size). Uses the built package: SQLite's parallel verify runs
 * compiled worker threads.
 */

import { join } from "node:path";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
// Compiled output on purpose: the verify workers run compiled JavaScript.
import { type ChainProgress, type Engine, openEngine } from "../dist/index.js";
import { verifyTuning } from "../dist/store/sqlite.js";
import { agent, policy, tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

const dir = tempDir();
const pgUrl = pgSchemaUrl();
const defaults = { ...verifyTuning };
afterEach(() => {
  Object.assign(verifyTuning, defaults);
});

async function fill(engine: Engine, count: number): Promise<void> {
  for (let i = 0; i < count; i += 250) {
    await Promise.all(
      Array.from({ length: Math.min(250, count - i) }, (_, j) =>
        engine.decide({ agent, actionType: "read.file", args: { i: i + j } }),
      ),
    );
  }
}

function expectCompletePass(reports: ChainProgress[], size: number): void {
  expect(reports.length).toBeGreaterThan(1);
  for (const [i, report] of reports.entries()) {
    expect(report.checked).toBeLessThanOrEqual(report.total);
    if (i > 0) expect(report.checked).toBeGreaterThanOrEqual(reports[i - 1]!.checked);
  }
  expect(reports.at(-1)).toEqual({ checked: size, total: size });
}

async function verifyWithProgress(engine: Engine) {
  const reports: ChainProgress[] = [];
  const result = await engine.verify({ onProgress: (p) => reports.push(p) });
  return { result, reports };
}

const discard = () =>
  new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });

describe.each([
  ["memory", () => ":memory:"],
  ["postgres", () => pgUrl()],
  ["sqlite", () => join(dir, "progress.db")],
])("progress of verify and export (%s)", (_name, store) => {
  it("reports monotonic progress that ends at the chain size, and the same result as without", async () => {
    const engine = await openEngine({ policy, store: store() });
    try {
      await fill(engine, 1500);
      const size = (await engine.verify()).checked;
      expect(size).toBeGreaterThanOrEqual(1500);

      const { result, reports } = await verifyWithProgress(engine);
      expect(result).toEqual({ chainValid: true, checked: size, firstBrokenAtRowId: null });
      expectCompletePass(reports, size);
      expect(reports[0]).toEqual({ checked: 0, total: size });

      const exported: ChainProgress[] = [];
      const counts = await engine.exportAudit(discard(), { onProgress: (p) => exported.push(p) });
      expectCompletePass(exported, counts.records);
    } finally {
      await engine.close();
    }
  });
});

describe("progress of SQLite's parallel verify (worker threads)", () => {
  it("sums the workers' per-chunk counts up to the chain size", async () => {
    const engine = await openEngine({ policy, store: join(dir, "parallel.db") });
    try {
      await fill(engine, 2400);
      verifyTuning.parallelMinRows = 10;
      // Five ranges of 500 on the workers' queue.
      verifyTuning.minRangeRows = 500;
      const { result, reports } = await verifyWithProgress(engine);
      expect(result).toMatchObject({ chainValid: true, firstBrokenAtRowId: null });
      // Two or more workers, each reporting at least one chunk, plus the start and the end.
      expect(reports.length).toBeGreaterThanOrEqual(3);
      expectCompletePass(reports, result.checked);
    } finally {
      await engine.close();
    }
  });
});
