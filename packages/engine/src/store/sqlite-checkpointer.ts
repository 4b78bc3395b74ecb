/**
 * WAL checkpoints off the event loop for the SQLite store.
 *
 * With `wal_autocheckpoint` SQLite runs the checkpoint inside whichever COMMIT crosses the
 * threshold, on the thread that committed: copying up to ~40 MB of WAL into the database file and
 * an fsync of it. Measured on the engine (300k decisions, 64 concurrent): 12 of 13 event-loop
 * stalls over 20 ms were exactly those commits, up to 288 ms. So the store's writer connection gets
 * `wal_autocheckpoint = 0`, and a worker thread with its own connection to the same file
 * checkpoints instead:
 *
 * - every {@link checkpointTuning.intervalMs} it reads how many WAL frames are not yet copied back,
 *   from the wal-index header in the `-shm` file (mxFrame at byte 16, nBackfill at byte 96:
 *   https://www.sqlite.org/walformat.html), and once that reaches `walPages` it runs
 *   `wal_checkpoint(PASSIVE)`, which never takes the writer lock, so commits go on meanwhile;
 * - a PASSIVE checkpoint cannot let the WAL start over while the writer keeps appending (the
 *   writer restarts it only once every frame is copied back), so right after it the worker tries
 *   `wal_checkpoint(RESTART)` with `busy_timeout = 0`: if the writer is in a transaction it
 *   degrades to PASSIVE at once; otherwise it copies only the frames committed since the PASSIVE
 *   one (the writer waits for that short tail, not for the whole WAL) and the next commit starts
 *   the WAL from its beginning. This keeps the WAL bounded under continuous writes.
 *
 * While that RESTART holds the writer lock (it fsyncs the WAL and the database file: ~5-50 ms here),
 * the worker raises a flag shared with the store; the store's commits on the event loop then wait
 * for the flag to drop with `Atomics.waitAsync` instead of entering SQLite's busy handler, which
 * sleeps on the event loop in growing steps (1, 2, 5, 10, 15, 20, 25 ms...): strace showed the
 * gateway's main thread asleep there for 30-140 ms per RESTART, answering nothing, and waking up to
 * 25 ms after the lock was free. Now the event loop keeps reading and deciding requests meanwhile
 * and the waiting batch commits as soon as the lock is released.
 *
 * If the worker cannot start or stops, the writer connection goes back to `wal_autocheckpoint`
 * (reported once per process with `process.emitWarning`): the WAL must never grow without bound.
 * Durability is unchanged: checkpoints only copy committed frames into the database file.
 */
import { endianness } from "node:os";
import { Worker } from "node:worker_threads";

/** Tunables (tests and benchmarks change them before opening a store). */
export const checkpointTuning = {
  /** `wal_autocheckpoint` of the writer connection when the worker is off or has failed. */
  autocheckpointPages: 10_000,
  /** Frames not yet copied back that trigger a checkpoint (the autocheckpoint threshold before). */
  walPages: 10_000,
  /** How often the worker looks at the WAL. */
  intervalMs: 50,
  /**
   * `false` keeps `wal_autocheckpoint` on the writer connection (the behaviour before; used by
   * benchmarks for A/B).
   */
  enabled: true,
  /** Test-only: replaces the worker's source, e.g. with one that fails, to exercise the fallback. */
  workerSource: undefined as string | undefined,
};

/**
 * Shared between the store and its worker (an Int32Array over a SharedArrayBuffer): slot
 * {@link STATE} holds the worker's lifecycle, slot {@link WRITER_LOCK} is 1 while the worker runs a
 * checkpoint that takes the writer lock.
 */
const STATE = 0;
const WRITER_LOCK = 1;
const STATE_STARTING = 0;
const STATE_OPEN = 1;
const STATE_CLOSING = 2;
const STATE_CLOSED = 3;
/**
 * How long `close()` waits for the worker to close its connection (it finishes a checkpoint in
 * progress first); past this the store closes anyway (nothing is lost: the WAL has every frame).
 */
const CLOSE_WAIT_MS = 10_000;
/**
 * The longest a commit waits for the worker's checkpoint before it tries anyway (then SQLite's
 * busy handler takes over, as without the flag): a stuck worker must not stop commits.
 */
const WRITER_WAIT_MS = 5_000;

/**
 * The worker, as CommonJS source evaluated in the thread (`eval: true`): it needs no file of its
 * own, so it also runs when the engine is loaded from its TypeScript sources (tests).
 */
const WORKER_SOURCE = `
const { workerData, parentPort } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { filePath, walPages, intervalMs, littleEndian, state } = workerData;
// The store may have closed before this thread got here: then never open the file (a connection
// opened after the store's close would recreate the -wal and -shm files).
if (Atomics.compareExchange(state, ${STATE}, ${STATE_STARTING}, ${STATE_OPEN}) !== ${STATE_STARTING}) {
  parentPort.close();
} else {
  try {
    run();
  } catch (error) {
    // Whatever failed, a store closing right now must not wait for this thread.
    closed();
    throw error;
  }
}
function closed() {
  Atomics.store(state, ${WRITER_LOCK}, 0);
  Atomics.notify(state, ${WRITER_LOCK});
  Atomics.store(state, ${STATE}, ${STATE_CLOSED});
  Atomics.notify(state, ${STATE});
}
function run() {
// Silence exactly node:sqlite's ExperimentalWarning (see sqlite-module.ts).
const emit = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const text = warning instanceof Error ? warning.message : String(warning);
  if (/^SQLite is an experimental feature/.test(text)) return;
  return emit.call(process, warning, ...rest);
};
const { DatabaseSync } = require("node:sqlite");
process.emitWarning = emit;
const db = new DatabaseSync(filePath);
// Never wait for the writer: a RESTART that cannot get the writer lock at once acts as PASSIVE.
db.exec("PRAGMA busy_timeout = 0");
db.exec("PRAGMA synchronous = NORMAL");
const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
const restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");
const header = Buffer.alloc(100);
let shm;
/**
 * [frames in the WAL, frames not yet copied back], or undefined when the wal-index cannot be read.
 */
function walState() {
  try {
    shm ??= openSync(filePath + "-shm", "r");
    if (readSync(shm, header, 0, 100, 0) < 100) return [0, 0];
    const mxFrame = littleEndian ? header.readUInt32LE(16) : header.readUInt32BE(16);
    const nBackfill = littleEndian ? header.readUInt32LE(96) : header.readUInt32BE(96);
    return [mxFrame, mxFrame > nBackfill ? mxFrame - nBackfill : 0];
  } catch {
    if (shm !== undefined) { try { closeSync(shm); } catch {} shm = undefined; }
    return undefined;
  }
}
function tick() {
  const wal = walState();
  // No readable wal-index (not created yet, or just removed): check with a checkpoint.
  const [frames, pending] = wal ?? [walPages, walPages];
  // Below the threshold nothing to do, unless a WAL past it only waits for its last frames (a
  // RESTART found the writer busy): then every tick tries again, so the WAL stays near the
  // threshold.
  if (pending < walPages && (frames < walPages || pending === 0)) return;
  try {
    // The bulk, without the writer lock: commits go on meanwhile.
    if (pending >= walPages) passive.get();
    // A busy writer always leaves a tail of what it committed during that pass, and the WAL
    // restarts only once every frame is copied back: copy the tail holding the writer lock (the
    // writer waits for the tail, not for the whole WAL). If the writer is in a transaction right
    // now, busy_timeout = 0 makes this a PASSIVE pass, and the next tick tries again. The flag
    // tells the store's commits to wait for the lock without blocking their event loop.
    Atomics.store(state, ${WRITER_LOCK}, 1);
    try {
      restart.get();
    } finally {
      Atomics.store(state, ${WRITER_LOCK}, 0);
      Atomics.notify(state, ${WRITER_LOCK});
    }
  } catch (error) {
    // SQLITE_BUSY and the like: the next tick tries again.
    if (!/busy|locked/i.test(String(error && error.message))) throw error;
  }
}
const timer = setInterval(tick, intervalMs);
parentPort.on("message", (message) => {
  if (message && message.close) {
    clearInterval(timer);
    try {
      if (shm !== undefined) closeSync(shm);
      db.close();
    } finally {
      closed();
      parentPort.close();
    }
  }
});
}
`;

let warned = false;

/** `Atomics.waitAsync` (Node 16+; in TypeScript's ES2024 lib, which the build does not use yet). */
const waitAsync = (
  Atomics as unknown as {
    waitAsync(
      array: Int32Array,
      index: number,
      value: number,
      timeoutMs: number,
    ):
      | { async: false; value: "not-equal" | "timed-out" }
      | { async: true; value: Promise<"ok" | "timed-out"> };
  }
).waitAsync;

/** The store's handle on its checkpoint worker. */
export class WalCheckpointer {
  readonly #worker: Worker | undefined;
  readonly #state = new Int32Array(new SharedArrayBuffer(8));
  #closed = false;
  #fellBack = false;

  /**
   * Starts the worker for `filePath`. `fallBack` is called once if it cannot start or stops: the
   * caller then turns `wal_autocheckpoint` back on for its writer connection.
   */
  constructor(filePath: string, fallBack: () => void) {
    const fail = (cause: unknown) => {
      if (this.#closed || this.#fellBack) return;
      this.#fellBack = true;
      fallBack();
      if (!warned) {
        warned = true;
        process.emitWarning(
          `The SQLite checkpoint worker for ${filePath} stopped (${cause instanceof Error ? cause.message : String(cause)}); WAL checkpoints now run on the committing thread (wal_autocheckpoint)`,
          { code: "AA_SQLITE_CHECKPOINTER" },
        );
      }
    };
    let worker: Worker | undefined;
    try {
      worker = new Worker(checkpointTuning.workerSource ?? WORKER_SOURCE, {
        eval: true,
        workerData: {
          filePath,
          walPages: checkpointTuning.walPages,
          intervalMs: checkpointTuning.intervalMs,
          littleEndian: endianness() === "LE",
          state: this.#state,
        },
      });
    } catch (cause) {
      fail(cause);
    }
    this.#worker = worker;
    if (worker === undefined) return;
    // The checkpointer must never keep the process alive.
    worker.unref();
    worker.once("error", fail);
    worker.once("exit", (code) => fail(new Error(`exited with code ${code}`)));
  }

  /**
   * While the worker holds the writer lock for a checkpoint: a promise that settles once it has
   * released it (or after {@link WRITER_WAIT_MS}); otherwise `undefined` (commit now). Waiting
   * here instead of in SQLite's busy handler keeps the event loop running.
   */
  writerLockReleased(): Promise<unknown> | undefined {
    if (this.#fellBack || Atomics.load(this.#state, WRITER_LOCK) === 0) return undefined;
    const wait = waitAsync(this.#state, WRITER_LOCK, 1, WRITER_WAIT_MS);
    if (!wait.async) return undefined;
    // A pending waitAsync does not keep the process alive (and the worker is unref'd): the
    // commit waiting on it must, or a process whose last work is that commit would just exit.
    const keepAlive = setTimeout(() => {}, WRITER_WAIT_MS + 1_000);
    return wait.value.finally(() => clearTimeout(keepAlive));
  }

  /** Checkpoints are back on the writer connection (the worker could not start, or stopped). */
  get fellBack(): boolean {
    return this.#fellBack;
  }

  /**
   * Stops the worker and waits (blocking, at most {@link CLOSE_WAIT_MS}) until it closed its
   * connection, so that the store's own connection is the last to close: it then checkpoints and
   * removes the WAL as before, and the file is free once the store's `close()` returns.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const worker = this.#worker;
    if (worker === undefined || this.#fellBack) return;
    // Not started yet: it will see this and never open the file.
    if (Atomics.compareExchange(this.#state, STATE, STATE_STARTING, STATE_CLOSING) === STATE_STARTING) return;
    worker.postMessage({ close: true });
    // The worker's thread handles the message on its own event loop while this one waits.
    Atomics.wait(this.#state, STATE, STATE_OPEN, CLOSE_WAIT_MS);
  }
}
