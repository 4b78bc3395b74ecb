/**
 * Group commit: appends issued in the same tick share one store transaction. A lone caller is
 * flushed on the next microtask, so it pays no timer and still gets its own immediate commit;
 * under concurrency everyone queued before the flush starts waits for that one commit. Stores that
 * append synchronously in memory bypass the queue entirely. A store that pipelines (SQLite with its
 * append worker) is handed the next batch while the previous one is still being committed.
 */
import { EngineError, storeFailure } from "../errors.js";
import type { AppendOutcome, AuditStore, PendingAppend } from "../store/types.js";

/** A pipelining store's batch is split in two when each half would have at least this many records. */
const PIPELINE_HALF_MIN = 64;

interface Waiter {
  item: PendingAppend;
  /** Resolved with the outcome, or with `answer` once committed when the caller gave one. */
  resolve: (value: AppendOutcome | unknown) => void;
  reject: (error: unknown) => void;
  answer: unknown;
}

export class ChainWriter {
  readonly #store: AuditStore;
  readonly #org: string;
  readonly #afterCommit: (lastSeq: number, lastHash: string | undefined) => void;
  #queue: Waiter[] = [];
  #scheduled = false;
  /** Batches handed to the store and not settled yet. */
  #inFlight = 0;
  #idle: (() => void)[] = [];
  /** Schedules a flush: end of this tick, or after the event loop's I/O phase (see EngineOptions.groupCommit). */
  readonly #later: (flush: () => void) => void;

  constructor(
    store: AuditStore,
    org: string,
    afterCommit: (lastSeq: number, lastHash: string | undefined) => void,
    groupCommit: "tick" | "io" = "tick",
  ) {
    this.#store = store;
    this.#org = org;
    this.#afterCommit = afterCommit;
    this.#later = groupCommit === "io" ? (flush) => setImmediate(flush) : queueMicrotask;
  }

  /** True when the store seals plain records later, in batches (the memory store). */
  get defers(): boolean {
    return this.#store.appendDeferred !== undefined;
  }

  /**
   * Hands a plain record (no effects) to a store that seals later; see {@link AuditStore.appendDeferred}.
   * `afterCommit` then gets the record's `seq` without its hash.
   */
  appendDeferred(build: () => PendingAppend): void {
    let seq: number;
    try {
      seq = this.#store.appendDeferred!(this.#org, build);
    } catch (error) {
      throw storeFailure("STORE_WRITE_FAILED", "Appending the audit record", error);
    }
    this.#afterCommit(seq, undefined);
  }

  /** Appends one record; resolves once it is committed (or rejects with an EngineError). */
  append(item: PendingAppend): Promise<AppendOutcome> {
    if (this.#store.immediate) {
      try {
        const outcome = (this.#store.appendBatch(this.#org, [item]) as AppendOutcome[])[0]!;
        if (outcome.ok) this.#afterCommit(outcome.seq, outcome.hash);
        return Promise.resolve(outcome);
      } catch (error) {
        return Promise.reject(storeFailure("STORE_WRITE_FAILED", "Appending the audit record", error));
      }
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ item, resolve: resolve as Waiter["resolve"], reject, answer: undefined });
      this.#schedule();
    });
  }

  /**
   * Appends one record and resolves with `answer` once it is committed, or rejects with the
   * outcome's error (or an EngineError). Saves the caller an `await` and a promise hop per call
   * (the decide path's answer is known before the commit). `answer` must not be `undefined`.
   */
  commit<T>(item: PendingAppend, answer: T): Promise<T> {
    if (this.#store.immediate) {
      return this.append(item).then((outcome) => {
        if (!outcome.ok) throw outcome.error;
        return answer;
      });
    }
    return new Promise<T>((resolve, reject) => {
      this.#queue.push({ item, resolve: resolve as Waiter["resolve"], reject, answer });
      this.#schedule();
    });
  }

  /** Resolves when nothing is queued or being written. */
  drain(): Promise<void> {
    if (!this.#scheduled && this.#inFlight === 0 && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /**
   * Flushes on the next microtask, so every append issued in this tick joins the batch. A store
   * that pipelines (commits in call order) gets a second batch while the first is being written;
   * any other store gets the next batch once the previous one settled.
   */
  #schedule(): void {
    if (this.#scheduled || this.#queue.length === 0) return;
    if (this.#inFlight >= (this.#store.pipelines ? 2 : 1)) return; // #settle schedules again
    this.#scheduled = true;
    this.#later(() => this.#flush());
  }

  #flush(): void {
    this.#scheduled = false;
    if (this.#queue.length === 0) return;
    const batch = this.#queue;
    if (this.#store.pipelines && this.#inFlight === 0 && batch.length >= 2 * PIPELINE_HALF_MIN) {
      // Fill the pipeline: half now, half right behind it. When the first half is answered its
      // callers decide again while the second half is still being committed, and so on.
      this.#queue = batch.splice(batch.length >> 1);
      this.#scheduled = true;
      queueMicrotask(() => this.#flush());
    } else this.#queue = [];
    this.#inFlight++;
    let pending: ReturnType<AuditStore["appendBatch"]>;
    try {
      pending = this.#store.appendBatch(
        this.#org,
        batch.map((w) => w.item),
      );
    } catch (error) {
      this.#settle(batch, undefined, error);
      return;
    }
    if (pending instanceof Promise) {
      pending.then(
        (outcomes) => this.#settle(batch, outcomes, undefined),
        (error: unknown) => this.#settle(batch, undefined, error),
      );
      // A pipelining store takes the next batch now (it commits after this one).
      this.#schedule();
    } else {
      // A synchronous store (SQLite, small batch) answers at once: no promise hop for its callers.
      this.#settle(batch, pending, undefined);
    }
  }

  /** Answers one batch's callers (batches settle in the order they were flushed). */
  #settle(batch: Waiter[], outcomes: AppendOutcome[] | undefined, error: unknown): void {
    this.#inFlight--;
    if (outcomes) {
      let last: AppendOutcome | undefined;
      for (let i = 0; i < batch.length; i++) {
        const outcome = outcomes[i]!;
        const waiter = batch[i]!;
        if (outcome.ok) last = outcome;
        if (waiter.answer === undefined) waiter.resolve(outcome);
        else if (outcome.ok) waiter.resolve(waiter.answer);
        else waiter.reject(outcome.error);
      }
      if (last?.ok) {
        try {
          this.#afterCommit(last.seq, last.hash);
        } catch {
          // The batch is committed and answered; a failing follow-up (checkpoint scheduling,
          // event fan-out) must not turn into an unhandled rejection here.
        }
      }
    } else {
      const failure =
        error instanceof EngineError
          ? error
          : storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
      for (const waiter of batch) waiter.reject(failure);
    }
    this.#schedule();
    if (this.#inFlight === 0 && !this.#scheduled && this.#queue.length === 0) {
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }
}
