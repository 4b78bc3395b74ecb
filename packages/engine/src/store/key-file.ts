/**
 * Evidence keys of a SQLite store live in `keys.json` beside the database file, mode 0600, one
 * entry per org. They are not in the database on purpose: a copy of the database (a backup, an
 * export) carries no private key. See docs/audit.md for what this does and does not protect.
 */
import { chmodSync, existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { EngineError } from "../errors.js";
import type { StoredKeys } from "./types.js";

interface KeyFile {
  version: 1;
  orgs: Record<string, StoredKeys>;
}

export function keyFilePath(databasePath: string): string {
  return join(dirname(databasePath), "keys.json");
}

export function readKeyFile(path: string): KeyFile {
  if (!existsSync(path)) return { version: 1, orgs: {} };
  try {
    const parsed = JSON.parse(readFileSync(path, "utf8")) as KeyFile;
    if (parsed?.version !== 1 || typeof parsed.orgs !== "object" || parsed.orgs === null)
      throw new Error("unknown layout");
    return parsed;
  } catch (cause) {
    throw new EngineError(
      "STORE_UNAVAILABLE",
      503,
      `The key file ${path} is unreadable (${(cause as Error).message}); restore it from backup — without it, existing checkpoints cannot be verified`,
      { path },
      { cause },
    );
  }
}

/** Call only while holding the database's write lock, so two processes never both create keys. */
export function loadOrCreateInKeyFile(path: string, org: string, create: () => StoredKeys): StoredKeys {
  const file = readKeyFile(path);
  const existing = file.orgs[org];
  if (existing) return existing;
  const keys = create();
  file.orgs[org] = keys;
  writeKeyFile(path, file);
  return keys;
}

/** Call only while holding the database's write lock (read-modify-write of the whole file). */
export function updateInKeyFile(
  path: string,
  org: string,
  update: (current: StoredKeys) => StoredKeys,
): StoredKeys {
  const file = readKeyFile(path);
  const current = file.orgs[org];
  if (!current)
    throw new EngineError("STORE_UNAVAILABLE", 503, `The key file ${path} has no keys for org ${org}`, {
      path,
    });
  const keys = update(current);
  file.orgs[org] = keys;
  writeKeyFile(path, file);
  return keys;
}

/** Atomic replace, never readable by others: write a 0600 temp file, then rename it over. */
function writeKeyFile(path: string, file: KeyFile): void {
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, JSON.stringify(file, null, 2), { mode: 0o600 });
  chmodSync(temp, 0o600);
  renameSync(temp, path);
}
