/**
 * Group commit off the main thread for the SQLite store (opt-in: `openEngine({ appendWorker: true })`):
 * a worker thread with its own connection
 * to the same file seals (hashes and links) and commits large batches, so the thread that decides
 * keeps deciding while the previous batch is written. Lone callers never pay the thread hop: the
 * store commits small batches itself whenever the worker is idle (see `SqliteStore.appendBatch`).
 *
 * Nothing about durability changes: a batch is answered only after the worker's COMMIT returned,
 * in the same WAL mode as the main connection. Batches are committed in the order they are sent.
 */
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import { EngineError } from "../errors.js";
import type { AppendOutcome, PendingAppend, StoreEffect } from "./types.js";

/** Batches at least this large go to the worker (tunable for tests; `Infinity` turns it off). */
export const appendWorkerTuning = { minBatch: 32 };

/** Columns sent per record: id, agent, action type, then the three parts of its encoding. */
export const APPEND_COLUMNS = 6;

/** A batch as sent to the worker: flat string columns (cheap to clone) and sparse effects. */
export interface AppendRequest {
  id: number;
  org: string;
  columns: string[];
  effects: (StoreEffect[] | undefined)[] | undefined;
}

/** An EngineError as it crosses the thread boundary. */
export interface SerializedError {
  code: EngineError["code"];
  status: number;
  message: string;
  details: Record<string, unknown>;
  retryable: boolean;
}

/** The worker's answer: per record `[seq, hash]` or the error that skipped it; or a failed batch. */
export type AppendReply =
  | { id: number; outcomes: ([number, string] | SerializedError)[] }
  | { id: number; failure: SerializedError };

export function serializeError(error: EngineError): SerializedError {
  return {
    code: error.code,
    status: error.status,
    message: error.message,
    details: error.details,
    retryable: error.retryable,
  };
}

function deserializeError(error: SerializedError): EngineError {
  return new EngineError(error.code, error.status, error.message, error.details, {
    retryable: error.retryable,
  });
}

/** Turns a request back into the items `SqliteStore.appendBatch` reads (id, agent, action type, encoding, effects). */
export function requestItems(request: AppendRequest): PendingAppend[] {
  const { columns, effects } = request;
  const items: PendingAppend[] = new Array(columns.length / APPEND_COLUMNS);
  for (let i = 0, at = 0; at < columns.length; i++, at += APPEND_COLUMNS) {
    items[i] = {
      // Only these fields are read when appending (the rest is already in the encoding).
      fields: {
        id: columns[at]!,
        agent: columns[at + 1]!,
        actionType: columns[at + 2]!,
      } as PendingAppend["fields"],
      encoded: { pre: columns[at + 3]!, mid: columns[at + 4]!, post: columns[at + 5]! },
      effects: effects?.[i],
    };
  }
  return items;
}

interface Waiting {
  resolve: (outcomes: AppendOutcome[]) => void;
  reject: (error: unknown) => void;
}

/** The main thread's handle on the append worker. */
export class AppendWorker {
  readonly #worker: Worker;
  /** Requests and replies travel on this port (it can also be read synchronously, see `usable`). */
  readonly #port: MessagePort;
  readonly #waiting = new Map<number, Waiting>();
  #nextId = 1;
  #ready = false;
  #dead = false;
  #idle: (() => void)[] = [];

  constructor(filePath: string) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(new URL("./sqlite-append-worker.js", import.meta.url), {
      workerData: { filePath, port: port2 },
      transferList: [port2],
    });
    // Idle, the worker must not keep the process alive; with batches in flight it must (ref()).
    this.#worker.unref();
    this.#port.unref();
    this.#port.on("message", (message: AppendReply | { ready: true }) => this.#receive(message));
    this.#worker.once("error", (error) => this.#fail(error));
    this.#worker.once("exit", (code) => this.#fail(new Error(`the append worker exited with code ${code}`)));
  }

  #receive(message: AppendReply | { ready: true }): void {
    if ("ready" in message) this.#ready = true;
    else this.#settle(message);
  }

  /** Started, and not failed: batches may be sent. */
  get usable(): boolean {
    if (!this.#ready && !this.#dead) {
      // Busy callers may keep this thread in microtasks for a long time, and the "ready" event
      // would wait for the event loop: look at the port directly.
      const received = receiveMessageOnPort(this.#port);
      if (received) this.#receive(received.message as AppendReply | { ready: true });
    }
    return this.#ready && !this.#dead;
  }

  /** Failed or closed: the store commits on its own connection from now on. */
  get dead(): boolean {
    return this.#dead;
  }

  /** Batches sent and not answered yet. */
  get busy(): boolean {
    return this.#waiting.size > 0;
  }

  append(org: string, items: PendingAppend[]): Promise<AppendOutcome[]> {
    const columns: string[] = new Array(items.length * APPEND_COLUMNS);
    let effects: (StoreEffect[] | undefined)[] | undefined;
    for (let i = 0, at = 0; i < items.length; i++, at += APPEND_COLUMNS) {
      const { fields, encoded } = items[i]!;
      columns[at] = fields.id;
      columns[at + 1] = fields.agent;
      columns[at + 2] = fields.actionType;
      columns[at + 3] = encoded.pre;
      columns[at + 4] = encoded.mid;
      columns[at + 5] = encoded.post;
      const itemEffects = items[i]!.effects;
      if (itemEffects) {
        effects ??= new Array(items.length);
        effects[i] = itemEffects;
      }
    }
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      if (this.#waiting.size === 0) {
        this.#worker.ref();
        this.#port.ref();
      }
      this.#waiting.set(id, { resolve, reject });
      this.#port.postMessage({ id, org, columns, effects } satisfies AppendRequest);
    });
  }

  /** Resolves once every batch sent so far is answered. */
  whenIdle(): Promise<void> {
    if (this.#waiting.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  /** Closes the worker's connection and lets the thread end (nothing may be in flight). */
  close(): void {
    if (this.#dead) return;
    this.#dead = true;
    // Messages are handled in order: batches still in flight are committed and answered first.
    this.#port.postMessage({ close: true });
  }

  #settle(reply: AppendReply): void {
    const waiting = this.#waiting.get(reply.id);
    if (!waiting) return;
    this.#waiting.delete(reply.id);
    if ("failure" in reply) waiting.reject(deserializeError(reply.failure));
    else {
      waiting.resolve(
        reply.outcomes.map(
          (o): AppendOutcome =>
            Array.isArray(o)
              ? { ok: true, seq: o[0], hash: o[1] }
              : { ok: false, error: deserializeError(o) },
        ),
      );
    }
    this.#afterSettle();
  }

  #afterSettle(): void {
    if (this.#waiting.size > 0) return;
    this.#worker.unref();
    this.#port.unref();
    const idle = this.#idle;
    this.#idle = [];
    for (const resolve of idle) resolve();
  }

  /**
   * The worker failed (or could not start, e.g. when running uncompiled sources): whatever it had
   * not answered fails as a store write failure, which decide() callers treat as fail-closed. A
   * batch it had already committed stays in the chain; its callers were told it failed.
   */
  #fail(cause: unknown): void {
    const wasDead = this.#dead;
    this.#dead = true;
    if (wasDead && this.#waiting.size === 0) return;
    const error = new EngineError(
      "STORE_WRITE_FAILED",
      503,
      `The SQLite append worker stopped (${cause instanceof Error ? cause.message : String(cause)}); retry: the store now writes on the main thread`,
      {},
      { cause, retryable: true },
    );
    for (const waiting of this.#waiting.values()) waiting.reject(error);
    this.#waiting.clear();
    this.#afterSettle();
  }
}
