/** Worker thread: verifies one contiguous range of a SQLite chain (see SqliteStore.verifyChainFast). */
import { parentPort, workerData } from "node:worker_threads";
import { ID_AT_SEQ_SQL, scanSqliteRange, VERIFY_ROWS_SQL, type VerifyWorkerMessage } from "./sqlite.js";
import { loadSqlite } from "./sqlite-module.js";

const { filePath, org, from, to, reportProgress } = workerData as {
  filePath: string;
  org: string;
  from: number;
  to: number;
  reportProgress: boolean;
};
const post = (message: VerifyWorkerMessage) => parentPort!.postMessage(message);
const { DatabaseSync } = await loadSqlite();
const db = new DatabaseSync(filePath, { readOnly: true });
try {
  const read = db.prepare(VERIFY_ROWS_SQL);
  read.setReturnArrays(true);
  const onChunk = reportProgress ? (checked: number) => post({ progress: checked }) : undefined;
  post({ scan: scanSqliteRange(read, db.prepare(ID_AT_SEQ_SQL), org, from, to, from === 1, onChunk) });
} finally {
  db.close();
}
