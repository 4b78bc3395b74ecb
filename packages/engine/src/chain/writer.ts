/**
 * Group commit: appends issued in the same tick share one store transaction. A lone caller is
 * flushed on the next microtask, so it pays no timer and still gets its own immediate commit;
 * under concurrency everyone queued before the flush starts waits for that one commit. Stores that
 * append synchronously in memory bypass the queue entirely.
 */
import { EngineError, storeFailure } from "../errors.js";
import type { AppendOutcome, AuditStore, PendingAppend } from "../store/types.js";

interface Waiter {
  item: PendingAppend;
  resolve: (outcome: AppendOutcome) => void;
  reject: (error: unknown) => void;
}

export class ChainWriter {
  readonly #store: AuditStore;
  readonly #org: string;
  readonly #afterCommit: (lastSeq: number, lastHash: string | undefined) => void;
  #queue: Waiter[] = [];
  #scheduled = false;
  #flushing = false;
  #idle: (() => void)[] = [];

  constructor(
    store: AuditStore,
    org: string,
    afterCommit: (lastSeq: number, lastHash: string | undefined) => void,
  ) {
    this.#store = store;
    this.#org = org;
    this.#afterCommit = afterCommit;
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
      this.#queue.push({ item, resolve, reject });
      if (!this.#scheduled && !this.#flushing) {
        this.#scheduled = true;
        queueMicrotask(() => void this.#flush());
      }
    });
  }

  /** Resolves when nothing is queued or being written. */
  drain(): Promise<void> {
    if (!this.#scheduled && !this.#flushing && this.#queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  async #flush(): Promise<void> {
    this.#scheduled = false;
    this.#flushing = true;
    while (this.#queue.length > 0) {
      const batch = this.#queue;
      this.#queue = [];
      try {
        const pending = this.#store.appendBatch(
          this.#org,
          batch.map((w) => w.item),
        );
        // A synchronous store (SQLite) answers at once: no extra promise hop for its callers.
        const outcomes = pending instanceof Promise ? await pending : pending;
        let last: AppendOutcome | undefined;
        for (let i = 0; i < batch.length; i++) {
          const outcome = outcomes[i]!;
          if (outcome.ok) last = outcome;
          batch[i]!.resolve(outcome);
        }
        if (last?.ok) this.#afterCommit(last.seq, last.hash);
      } catch (error) {
        const failure =
          error instanceof EngineError
            ? error
            : storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
        for (const waiter of batch) waiter.reject(failure);
      }
    }
    this.#flushing = false;
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }
}
