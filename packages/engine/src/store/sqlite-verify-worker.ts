/** Worker thread: verifies one contiguous range of a SQLite chain (see SqliteStore.verifyChainFast). */
import { parentPort, workerData } from "node:worker_threads";
import { scanSqliteRange } from "./sqlite.js";
import { loadSqlite } from "./sqlite-module.js";

const { filePath, org, from, to } = workerData as { filePath: string; org: string; from: number; to: number };
const { DatabaseSync } = await loadSqlite();
const db = new DatabaseSync(filePath, { readOnly: true });
try {
  const read = db.prepare(
    "SELECT id, seq, hash, record AS text FROM audit_events WHERE org = ? AND seq > ? ORDER BY seq LIMIT ?",
  );
  parentPort!.postMessage(scanSqliteRange(read, org, from, to, from === 1));
} finally {
  db.close();
}
