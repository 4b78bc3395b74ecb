/**
 * WAL checkpoints on a worker thread (sqlite-checkpointer.ts), on a real SQLite file: the WAL
 * restarts and stays bounded while the writer connection never checkpoints itself, and when the
 * worker cannot start the writer connection checkpoints again.
 */
import { closeSync, existsSync, openSync, readSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { checkpointTuning } from "../src/store/sqlite-checkpointer.js";
import { agent, policy, tempDir } from "./helpers.js";

const dir = tempDir();
const defaults = { ...checkpointTuning };
/** Rounds of writes until the expected WAL restarts happened: bounded, whatever the machine's speed. */
const MAX_ROUNDS = 400;
const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
const SLOW = 120_000;

afterEach(() => {
  Object.assign(checkpointTuning, defaults);
});

/** The WAL's checkpoint sequence number (header bytes 12..15): it grows each time the WAL restarts. */
function walSequence(file: string): number {
  const header = Buffer.alloc(16);
  let fd: number;
  try {
    fd = openSync(`${file}-wal`, "r");
  } catch {
    return -1;
  }
  try {
    return readSync(fd, header, 0, 16, 0) === 16 ? header.readUInt32BE(12) : -1;
  } finally {
    closeSync(fd);
  }
}

const walBytes = (file: string) => {
  try {
    return statSync(`${file}-wal`).size;
  } catch {
    return 0;
  }
};

/** Writes rounds of 100 decisions until the WAL restarted `restarts` times (or MAX_ROUNDS). */
async function writeUntilRestarts(file: string, restarts: number) {
  const engine = await openEngine({ policy, store: file });
  const first = walSequence(file);
  let seen = 0;
  let last = first;
  let maxWal = 0;
  let written = 0;
  for (let round = 0; round < MAX_ROUNDS && seen < restarts; round++) {
    const calls = [];
    for (let i = 0; i < 100; i++) {
      calls.push(engine.decide({ agent, actionType: "read.file", args: { round, i, pad: "x".repeat(400) } }));
    }
    const results = await Promise.all(calls);
    written += results.length;
    for (const r of results) expect(r.auditEventId).toEqual(expect.any(String));
    const sequence = walSequence(file);
    if (sequence !== last && last !== -1) seen++;
    last = sequence;
    maxWal = Math.max(maxWal, walBytes(file));
    await pause(); // the checkpointer works in the background
  }
  return { engine, seen, maxWal, written };
}

describe("SQLite WAL checkpoints on a worker thread", () => {
  it("restart the WAL and keep it bounded while the writer connection never checkpoints", {
    timeout: SLOW,
  }, async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === "AA_SQLITE_CHECKPOINTER") warnings.push(w.message);
    };
    process.on("warning", onWarning);
    // The writer connection would checkpoint only every 1M pages: every restart is the worker's.
    checkpointTuning.autocheckpointPages = 1_000_000;
    checkpointTuning.walPages = 64;
    checkpointTuning.intervalMs = 5;
    const file = join(dir, "worker.db");
    const { engine, seen, maxWal, written } = await writeUntilRestarts(file, 5);
    try {
      expect(seen).toBeGreaterThanOrEqual(5);
      // Without checkpoints the WAL would hold every record written (several MB); with them it
      // stays within a few multiples of the threshold (64 pages of 4 KiB) plus one round.
      expect(maxWal).toBeLessThan(4 * 1024 * 1024);
      expect(written).toBeGreaterThan(0);
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: written });
      expect(warnings).toEqual([]);
    } finally {
      await engine.close();
      process.off("warning", onWarning);
    }
    // close() waited for the worker's connection: the store's was the last, checkpointed the WAL
    // back into the database file and removed it, as without the worker.
    expect(existsSync(`${file}-wal`)).toBe(false);
    // Reopened after close: everything committed is there.
    const again = await openEngine({ policy, store: file });
    try {
      expect(await again.verify()).toMatchObject({ chainValid: true, checked: written });
    } finally {
      await again.close();
    }
  });

  it("fall back to wal_autocheckpoint on the writer connection when the worker cannot start", {
    timeout: SLOW,
  }, async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => {
      if (w.code === "AA_SQLITE_CHECKPOINTER") warnings.push(w.message);
    };
    process.on("warning", onWarning);
    checkpointTuning.workerSource = 'throw new Error("no checkpointer in this test")';
    checkpointTuning.autocheckpointPages = 64;
    const file = join(dir, "fallback.db");
    const { engine, seen, written } = await writeUntilRestarts(file, 3);
    try {
      // Only the writer connection's autocheckpoint can have restarted the WAL.
      expect(seen).toBeGreaterThanOrEqual(3);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/no checkpointer in this test/);
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: written });
    } finally {
      await engine.close();
      process.off("warning", onWarning);
    }
  });

  it("let a commit wait for the worker's writer lock without blocking the event loop", {
    timeout: SLOW,
  }, async () => {
    // A stand-in worker that follows the store's protocol (lifecycle in slot 0, the writer-lock
    // flag in slot 1) and holds the writer lock, as a RESTART does, from when `<file>.hold`
    // appears until it is removed; it writes `<file>.held` once the lock is taken.
    checkpointTuning.workerSource = `
      const { workerData, parentPort } = require("node:worker_threads");
      const { existsSync, writeFileSync } = require("node:fs");
      const { filePath, state } = workerData;
      Atomics.store(state, 0, 1);
      const emit = process.emitWarning;
      process.emitWarning = () => {}; // node:sqlite's ExperimentalWarning, as in the real worker
      const { DatabaseSync } = require("node:sqlite");
      process.emitWarning = emit;
      const db = new DatabaseSync(filePath);
      let holding = false;
      const timer = setInterval(() => {
        if (!holding && existsSync(filePath + ".hold")) {
          db.exec("BEGIN IMMEDIATE");
          Atomics.store(state, 1, 1);
          holding = true;
          writeFileSync(filePath + ".held", "");
        } else if (holding && !existsSync(filePath + ".hold")) {
          db.exec("COMMIT");
          holding = false;
          Atomics.store(state, 1, 0);
          Atomics.notify(state, 1);
        }
      }, 5);
      parentPort.on("message", (message) => {
        if (message && message.close) {
          clearInterval(timer);
          db.close();
          Atomics.store(state, 0, 3);
          Atomics.notify(state, 0);
          parentPort.close();
        }
      });
    `;
    const file = join(dir, "writer-lock.db");
    const engine = await openEngine({ policy, store: file });
    try {
      await engine.decide({ agent, actionType: "read.file", args: { before: true } });
      writeFileSync(`${file}.hold`, "");
      for (let i = 0; i < 1000 && !existsSync(`${file}.held`); i++) await pause();
      expect(existsSync(`${file}.held`)).toBe(true);

      let settled = false;
      const decision = engine.decide({ agent, actionType: "read.file", args: { during: true } });
      void decision.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      // Timers fire while the commit waits: SQLite's busy handler would have blocked this thread
      // until the lock was free (here: never, so the commit would fail after busy_timeout).
      let timersRan = 0;
      for (let i = 0; i < 5; i++) {
        await pause();
        timersRan++;
      }
      expect(timersRan).toBe(5);
      expect(settled).toBe(false);
      const later = engine.decide({ agent, actionType: "read.file", args: { after: true } });

      rmSync(`${file}.hold`);
      const [first, second] = await Promise.all([decision, later]);
      expect(first.status).toBe("executed");
      expect(second.status).toBe("executed");
      // Both committed, in the order they were decided.
      const { items } = await engine.audit({ limit: 10 });
      const seqOf = (id: string) => items.find((e) => e.id === id)?.seq;
      expect(seqOf(first.auditEventId)).toBe(2);
      expect(seqOf(second.auditEventId)).toBe(3);
      expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 3 });
    } finally {
      rmSync(`${file}.hold`, { force: true });
      await engine.close();
    }
  });
});
