/**
 * Canary: secrets planted in a call must never reach the SQLite file (database and WAL bytes), the
 * export, receipts, decision results or error messages.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { agent, policy, tempDir } from "./helpers.js";

const CARD = "4111111111111111";
const PASSWORD = "hunter2-canary-Pw-77";
const API_KEY = "sk-live-CANARY0123456789abcdefABCDEF";

function countPlaintext(bytes: Buffer | string): number {
  const text = typeof bytes === "string" ? bytes : bytes.toString("latin1");
  return [CARD, PASSWORD, API_KEY].reduce((n, s) => n + text.split(s).length - 1, 0);
}

describe("redaction canary", () => {
  it("leaves zero plaintext secrets in the store, export, receipts, results and errors", async () => {
    const dir = tempDir();
    const file = join(dir, "canary.db");
    const engine = await openEngine({ policy, store: file });
    const outputs: string[] = [];
    const args = { amount: 50, card: CARD, nested: { password: PASSWORD }, note: `token ${API_KEY}` };
    const allowed = await engine.decide({ agent, actionType: "pay", args, metadata: { password: PASSWORD } });
    outputs.push(JSON.stringify(allowed));
    const denied = await engine.decide({ agent, actionType: "pay", args: { ...args, amount: 5000 } });
    outputs.push(JSON.stringify(denied));
    const held = await engine.decide({ agent, actionType: "pr.merge", args });
    outputs.push(JSON.stringify(held));
    await engine.approve(held.approvalId!, "alice", `ok ${API_KEY}`);
    outputs.push(JSON.stringify(await engine.releaseApproval(held.approvalId!, agent.id)));
    await engine.report(
      allowed.auditEventId,
      { status: "success", message: `done with ${API_KEY}`, metadata: { password: PASSWORD } },
      agent.id,
    );
    outputs.push(await engine.receipt(allowed.auditEventId));
    outputs.push(JSON.stringify(await engine.audit()));
    const bad = await engine
      .decide({ agent, actionType: "pay", args, eventId: "k" })
      .then(() => engine.decide({ agent, actionType: "pay", args: { ...args, amount: 1 }, eventId: "k" }))
      .catch((error: Error) => error);
    expect(bad).toBeInstanceOf(Error);
    outputs.push(String((bad as Error).message), JSON.stringify(bad));
    let exported = "";
    await engine.exportAudit(
      new Writable({
        write(chunk, _e, cb) {
          exported += String(chunk);
          cb();
        },
      }),
    );
    outputs.push(exported);

    // The allowed record shows the redaction it applied, and its args hash covers the redacted args.
    const [first] = (await engine.audit()).items;
    expect(first!.args).toMatchObject({ card: "[REDACTED]", amount: 50 });
    expect(first!.redaction_rules).toEqual(expect.arrayContaining(["$.card:mask"]));
    // Bytes on disk before close (WAL holds the recent pages) and after.
    const filesBytes = () => readdirSync(dir).map((f) => readFileSync(join(dir, f)));
    expect(readdirSync(dir).some((f) => f.endsWith("-wal"))).toBe(true);
    for (const bytes of filesBytes()) expect(countPlaintext(bytes)).toBe(0);
    await engine.close();
    for (const bytes of filesBytes()) expect(countPlaintext(bytes)).toBe(0);
    for (const text of outputs) expect(countPlaintext(text)).toBe(0);
  });
});
