/** Picks the store for a `store` option: `:memory:`, a `postgres://` URL, or a SQLite file path. */
import { EngineError } from "../errors.js";
import { MemoryStore } from "./memory.js";
import type { AuditStore } from "./types.js";

export function isPostgresUrl(store: string): boolean {
  return /^postgres(ql)?:\/\//i.test(store);
}

/** `appendWorker`: SQLite commits large batches on a worker thread (see `EngineOptions.appendWorker`). */
export async function openStore(
  store: string,
  options: { appendWorker?: boolean } = {},
): Promise<AuditStore> {
  if (typeof store !== "string" || store === "") {
    throw new EngineError(
      "INVALID_OPTIONS",
      400,
      '`store` must be ":memory:", a SQLite file path or a postgres:// URL',
      { option: "store" },
    );
  }
  if (store === ":memory:") return new MemoryStore();
  if (isPostgresUrl(store)) {
    // Loaded only here, so an embedded user never loads `pg`.
    const { PostgresStore } = await import("./postgres.js");
    return PostgresStore.open(store);
  }
  const { SqliteStore } = await import("./sqlite.js");
  return SqliteStore.open(store, { appendWorker: options.appendWorker === true });
}
