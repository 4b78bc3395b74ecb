import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ChainWriter } from "../src/chain/writer.js";
import { openEngine } from "../src/index.js";
import type { AppendOutcome, AuditStore, PendingAppend } from "../src/store/types.js";
import { policy } from "./helpers.js";

/** A store that records the size of every batch it is asked to commit (the writer's only contract). */
function recordingStore(): { store: AuditStore; batches: number[] } {
  const batches: number[] = [];
  let seq = 0;
  const store = {
    kind: "memory",
    immediate: false,
    appendBatch(_org: string, items: PendingAppend[]): AppendOutcome[] {
      batches.push(items.length);
      return items.map(() => ({ ok: true as const, seq: ++seq, hash: `h${seq}` }));
    },
  } as unknown as AuditStore;
  return { store, batches };
}

/** Five appends, each issued from its own event-loop callback, as requests read from five sockets are. */
async function appendFromSeparateCallbacks(writer: ChainWriter): Promise<void> {
  const item = {} as PendingAppend;
  await Promise.all(
    Array.from(
      { length: 5 },
      () => new Promise<void>((done) => setImmediate(() => void writer.append(item).then(() => done()))),
    ),
  );
}

describe("group commit window", () => {
  it('"tick" commits each callback\'s append on its own; "io" lets callbacks of one loop turn share a commit', async () => {
    const tick = recordingStore();
    await appendFromSeparateCallbacks(new ChainWriter(tick.store, "org", () => undefined, "tick"));
    expect(tick.batches).toEqual([1, 1, 1, 1, 1]);

    const io = recordingStore();
    await appendFromSeparateCallbacks(new ChainWriter(io.store, "org", () => undefined, "io"));
    expect(io.batches).toEqual([5]);
  });

  it('a SQLite engine with groupCommit "io" commits and verifies like any other; a bad value is refused', async () => {
    const store = join(mkdtempSync(join(tmpdir(), "aa-group-commit-")), "assembly.db");
    const engine = await openEngine({ policy, store, groupCommit: "io" });
    const results = await Promise.all(
      Array.from(
        { length: 20 },
        (_, i) =>
          new Promise((done) =>
            setImmediate(() =>
              done(engine.decide({ agent: { id: "bot" }, actionType: "repo.read", args: { i } })),
            ),
          ),
      ),
    );
    expect(results).toHaveLength(20);
    expect(await engine.verify()).toMatchObject({ chainValid: true, checked: 20 });
    await engine.close();
    await expect(
      openEngine({ policy, store: ":memory:", groupCommit: "later" as "io" }),
    ).rejects.toMatchObject({
      code: "INVALID_OPTIONS",
      details: { option: "groupCommit" },
    });
  });
});
