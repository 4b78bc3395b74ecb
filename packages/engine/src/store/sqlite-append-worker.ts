/** Worker thread: seals and commits batches for a SqliteStore on its own connection (see sqlite-append.ts). */
import { type MessagePort, workerData } from "node:worker_threads";
import { EngineError, storeFailure } from "../errors.js";
import { SqliteStore } from "./sqlite.js";
import { type AppendReply, type AppendRequest, requestItems, serializeError } from "./sqlite-append.js";

const { filePath, port } = workerData as { filePath: string; port: MessagePort };
// Its commits run on this thread: checkpoints in them stall no event loop that serves callers.
const store = await SqliteStore.open(filePath, { walCheckpointer: false });

port.on("message", (message: AppendRequest | { close: true }) => {
  if ("close" in message) {
    store.close();
    port.close();
    return;
  }
  let reply: AppendReply;
  try {
    const outcomes = store.appendBatchNow(message.org, requestItems(message));
    reply = {
      id: message.id,
      outcomes: outcomes.map((o) => (o.ok ? [o.seq, o.hash] : serializeError(o.error))),
    };
  } catch (error) {
    const failure =
      error instanceof EngineError
        ? error
        : storeFailure("STORE_WRITE_FAILED", "Appending audit records", error);
    reply = { id: message.id, failure: serializeError(failure) };
  }
  port.postMessage(reply);
});
port.postMessage({ ready: true });
