/**
 * Push notifications between engines sharing one PostgreSQL database (gateway replicas):
 * after a commit, the appending store sends `pg_notify` on a channel of its schema; every store
 * that watches holds one dedicated `LISTEN` connection and hands each notification to its engine,
 * which wakes approval waiters, event subscribers and the kill-switch view at once.
 *
 * Notifications are hints, never the data: receivers re-read the store by position, and keep
 * polling as the fallback. A notification lost to a crash between commit and `pg_notify`, or sent
 * while a listener was reconnecting, is caught by the next poll (and a reconnect announces a
 * `resync`, so the engine re-reads everything at once).
 */
import { createHash } from "node:crypto";
import type { Client, ClientConfig, Notification } from "pg";
import type { StoreChange } from "../types.js";

/** PostgreSQL channel names are identifiers: at most 63 bytes. */
const MAX_CHANNEL = 63;
/** Beyond this many approval ids a hint says "all". */
const MAX_APPROVAL_IDS = 100;
/** PostgreSQL refuses payloads of 8000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7900;
const RECONNECT_FIRST_MS = 100;
const RECONNECT_MAX_MS = 5000;
/**
 * A LISTEN connection only receives, so a silently dead one (a half-open TCP connection after a
 * network cut or a failover) would never report an error: it is pinged this often, and a ping
 * unanswered within PING_TIMEOUT_MS counts as a lost connection.
 */
const PING_MS = 30_000;
const PING_TIMEOUT_MS = 10_000;

/** The channel of one schema, so stores in different schemas of one database do not wake each other. */
export function channelFor(schema: string | null): string {
  const name = `aa_changes_${schema ?? "default"}`;
  if (name.length <= MAX_CHANNEL) return name;
  return `aa_changes_${createHash("sha256").update(schema!).digest("hex").slice(0, 40)}`;
}

/** What one commit (or several coalesced ones) changed for an org. */
export interface PendingChange {
  seq: number;
  /** Approvals whose row changed; `"all"` when too many to list. */
  approvals: Set<string> | "all";
  controls: boolean;
}

interface Payload {
  /** org */
  o: string;
  /** highest seq appended */
  s: number;
  /** approval ids changed, or "*" */
  a?: string[] | "*";
  /** operator controls changed */
  c?: 1;
}

export function encodePayload(org: string, change: PendingChange): string {
  const payload: Payload = { o: org, s: change.seq };
  if (change.approvals === "all") payload.a = "*";
  else if (change.approvals.size > 0) payload.a = [...change.approvals];
  if (change.controls) payload.c = 1;
  const text = JSON.stringify(payload);
  if (Buffer.byteLength(text) <= MAX_PAYLOAD_BYTES || payload.a === undefined) return text;
  // Long approval ids: "all" instead of a payload PostgreSQL would refuse.
  payload.a = "*";
  return JSON.stringify(payload);
}

/** Parses a payload; anything malformed (another program on the channel) is ignored. */
export function decodePayload(text: string | undefined): StoreChange | undefined {
  if (text === undefined) return undefined;
  let payload: Partial<Payload>;
  try {
    payload = JSON.parse(text) as Partial<Payload>;
  } catch {
    return undefined;
  }
  if (typeof payload?.o !== "string" || !Number.isSafeInteger(payload.s)) return undefined;
  const approvals =
    payload.a === "*"
      ? "all"
      : Array.isArray(payload.a)
        ? payload.a.filter((id): id is string => typeof id === "string")
        : [];
  return { kind: "appended", org: payload.o, seq: payload.s!, approvals, controls: payload.c === 1 };
}

/** Merges a commit's change into what is waiting to be announced. */
export function mergeChange(into: PendingChange | undefined, change: PendingChange): PendingChange {
  if (into === undefined) return change;
  into.seq = Math.max(into.seq, change.seq);
  into.controls ||= change.controls;
  if (into.approvals !== "all") {
    if (change.approvals === "all") into.approvals = "all";
    else for (const id of change.approvals) into.approvals.add(id);
    if (into.approvals !== "all" && into.approvals.size > MAX_APPROVAL_IDS) into.approvals = "all";
  }
  return into;
}

/**
 * Sends notifications after commits, at most one `pg_notify` in flight per store: commits made
 * while one is in flight are merged into the next, so a busy writer pays one extra statement per
 * group of commits, never one per record, and never while holding the chain-head lock.
 */
export class Announcer {
  readonly #send: (payload: string) => Promise<unknown>;
  #pending = new Map<string, PendingChange>();
  #sending = false;
  #closed = false;
  #idle: (() => void)[] = [];

  constructor(send: (payload: string) => Promise<unknown>) {
    this.#send = send;
  }

  announce(org: string, change: PendingChange): void {
    if (this.#closed) return;
    this.#pending.set(org, mergeChange(this.#pending.get(org), change));
    if (!this.#sending) void this.#run();
  }

  /** Resolves once nothing is waiting to be sent (used before the pool closes). */
  drain(): Promise<void> {
    if (!this.#sending) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#pending.clear();
  }

  async #run(): Promise<void> {
    this.#sending = true;
    try {
      while (this.#pending.size > 0 && !this.#closed) {
        const batch = this.#pending;
        this.#pending = new Map();
        for (const [org, change] of batch) {
          try {
            await this.#send(encodePayload(org, change));
          } catch {
            // A lost notification is a slower wake-up, not a lost record: receivers also poll.
          }
        }
      }
    } finally {
      this.#sending = false;
      const idle = this.#idle;
      this.#idle = [];
      for (const resolve of idle) resolve();
    }
  }
}

/**
 * One dedicated `LISTEN` connection, reconnected with backoff when it drops. A `LISTEN` that
 * succeeds after a failure is reported as a `resync`: notifications sent while it was down are gone.
 */
export class Listener {
  readonly #connect: () => Client;
  readonly #channel: string;
  readonly #onChange: (change: StoreChange) => void;
  #client: Client | undefined;
  #stopped = false;
  /** Set when a connection failed or dropped: the next successful LISTEN announces a resync. */
  #missedSome = false;
  #retryMs = RECONNECT_FIRST_MS;
  #timer: NodeJS.Timeout | undefined;
  #ping: NodeJS.Timeout | undefined;
  #ready: Promise<void>;

  constructor(
    config: ClientConfig,
    pg: typeof import("pg"),
    channel: string,
    onChange: (change: StoreChange) => void,
  ) {
    this.#connect = () =>
      new pg.Client({ ...config, application_name: `aa-listener ${channel}`.slice(0, 63) });
    this.#channel = channel;
    this.#onChange = onChange;
    this.#ready = this.#open();
  }

  /** Resolves once the first `LISTEN` attempt has finished (successfully or not). */
  get ready(): Promise<void> {
    return this.#ready;
  }

  async #open(): Promise<void> {
    if (this.#stopped) return;
    const client = this.#connect();
    this.#client = client;
    let failed = false;
    const lost = () => {
      if (failed) return;
      failed = true;
      this.#missedSome = true;
      if (this.#client === client) {
        this.#client = undefined;
        clearInterval(this.#ping);
        this.#ping = undefined;
      }
      client.removeAllListeners("notification");
      void client.end().catch(() => undefined);
      this.#scheduleReconnect();
    };
    client.on("error", lost);
    client.on("end", lost);
    client.on("notification", (message: Notification) => {
      if (message.channel !== this.#channel) return;
      const change = decodePayload(message.payload);
      if (change) this.#onChange(change);
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${client.escapeIdentifier(this.#channel)}`);
    } catch {
      lost();
      return;
    }
    if (this.#stopped) {
      failed = true;
      await client.end().catch(() => undefined);
      return;
    }
    this.#retryMs = RECONNECT_FIRST_MS;
    this.#ping = setInterval(() => {
      let timeout: NodeJS.Timeout | undefined;
      const unanswered = new Promise((_, reject) => {
        timeout = setTimeout(() => reject(new Error("no answer to the listener's ping")), PING_TIMEOUT_MS);
      });
      Promise.race([client.query("SELECT 1"), unanswered])
        .catch(lost)
        .finally(() => clearTimeout(timeout));
    }, PING_MS);
    this.#ping.unref();
    if (this.#missedSome) {
      this.#missedSome = false;
      this.#onChange({ kind: "resync" });
    }
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#timer !== undefined) return;
    const wait = this.#retryMs;
    this.#retryMs = Math.min(this.#retryMs * 2, RECONNECT_MAX_MS);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#open();
    }, wait);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    clearInterval(this.#ping);
    this.#ping = undefined;
    const client = this.#client;
    this.#client = undefined;
    if (client) {
      client.removeAllListeners("end");
      client.removeAllListeners("error");
      client.on("error", () => undefined);
      await client.end().catch(() => undefined);
    }
  }
}

/** Listeners shared by every store of this process on the same server and channel. */
const sharedListeners = new Map<
  string,
  { listener: Listener; watchers: Set<(change: StoreChange) => void> }
>();

/**
 * Watches a channel through the one `LISTEN` connection this process keeps for it (a gateway
 * opens one engine, hence one store, per org: they all share it). The last `stop()` closes it.
 */
export function watchChannel(
  config: ClientConfig,
  pg: typeof import("pg"),
  channel: string,
  onChange: (change: StoreChange) => void,
): { ready: Promise<void>; stop: () => void } {
  const key = `${channel}\u0000${config.connectionString ?? ""}`;
  let entry = sharedListeners.get(key);
  if (entry === undefined) {
    const watchers = new Set<(change: StoreChange) => void>();
    const listener = new Listener(config, pg, channel, (change) => {
      for (const watcher of [...watchers]) {
        try {
          watcher(change);
        } catch {
          // One watcher's failure must not stop the others; hints only.
        }
      }
    });
    entry = { listener, watchers };
    sharedListeners.set(key, entry);
  }
  const shared = entry;
  shared.watchers.add(onChange);
  let stopped = false;
  return {
    ready: shared.listener.ready,
    stop: () => {
      if (stopped) return;
      stopped = true;
      shared.watchers.delete(onChange);
      if (shared.watchers.size === 0) {
        if (sharedListeners.get(key) === shared) sharedListeners.delete(key);
        void shared.listener.stop();
      }
    },
  };
}
