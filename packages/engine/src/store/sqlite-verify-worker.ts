/** Worker thread: verifies one contiguous range of a SQLite chain (see SqliteStore.verifyChainFast). */
import { parentPort, workerData } from "node:worker_threads";
import { ID_AT_SEQ_SQL, scanSqliteRange, VERIFY_ROWS_SQL } from "./sqlite.js";
import { loadSqlite } from "./sqlite-module.js";

const { filePath, org, from, to } = workerData as { filePath: string; org: string; from: number; to: number };
const { DatabaseSync } = await loadSqlite();
const db = new DatabaseSync(filePath, { readOnly: true });
try {
  const read = db.prepare(VERIFY_ROWS_SQL);
  read.setReturnArrays(true);
  parentPort!.postMessage(scanSqliteRange(read, db.prepare(ID_AT_SEQ_SQL), org, from, to, from === 1));
} finally {
  db.close();
}
