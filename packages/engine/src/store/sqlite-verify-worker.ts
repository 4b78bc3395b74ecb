/**
 * Worker thread: verifies contiguous ranges of a SQLite chain, one per request, until told there
 * are none left (see SqliteStore.verifyChainFast).
 */
import { parentPort, workerData } from "node:worker_threads";
import {
  ID_AT_SEQ_SQL,
  scanSqliteRange,
  VERIFY_ROWS_SQL,
  type VerifyWorkerMessage,
  type VerifyWorkerRequest,
} from "./sqlite.js";
import { loadSqlite } from "./sqlite-module.js";

const { filePath, org, reportProgress, mmapBytes } = workerData as {
  filePath: string;
  org: string;
  reportProgress: boolean;
  mmapBytes: number;
};
const port = parentPort!;
const post = (message: VerifyWorkerMessage) => port.postMessage(message);
const { DatabaseSync } = await loadSqlite();
const db = new DatabaseSync(filePath, { readOnly: true });
// Pages come from a memory map instead of one read() and copy each. The audit file only grows
// (no VACUUM, no auto_vacuum), so the mapped part is never cut off under this connection.
db.exec(`PRAGMA mmap_size = ${Math.max(0, Math.floor(mmapBytes))}`);
const read = db.prepare(VERIFY_ROWS_SQL);
read.setReturnArrays(true);
const idAtSeq = db.prepare(ID_AT_SEQ_SQL);

port.on("message", (request: VerifyWorkerRequest) => {
  if ("done" in request) {
    db.close();
    port.close();
    return;
  }
  const { range, from, to } = request;
  const onChunk = reportProgress ? (checked: number) => post({ range, progress: checked }) : undefined;
  post({ range, scan: scanSqliteRange(read, idAtSeq, org, from, to, from === 1, onChunk) });
});
