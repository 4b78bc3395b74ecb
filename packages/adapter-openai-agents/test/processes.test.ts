/**
 * Real hosts in child processes: a CommonJS app (the dual package hazard: its `Agent` comes from the
 * CJS build of @openai/agents-core; Node 22 `require()`s the ESM @aa/core and adapter), and a held
 * run resumed from a serialized RunState in another process.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { TEST_POLICY } from "./helpers.js";

const run = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;

it("governs agents built from the CJS build in a CommonJS host", async () => {
  const script = new URL("./fixtures/cjs-agent.cjs", import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [script, JSON.stringify(TEST_POLICY), ROOT], { cwd: ROOT });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  expect(result.entryPoints).toContain("@openai/agents-core Agent.prototype.getAllTools (cjs)");
  expect(result.denial.callId).toBe("c-big");
  expect(result.denial.output).toContain("args.amount lt 100 (actual: 700)");
  expect(result.interrupted).toEqual(["deploy"]);
  expect(result.finalOutput).toBe("done");
  // After shutdown the same tool runs ungoverned (600 would be denied).
  expect(result.ran).toEqual(["transfer 5 to bob", "deploy api", "transfer 600 to eve"]);
}, 30_000);

it("resumes a held run in another process: the reviewer's approval is found through the audit trail", async () => {
  const dir = mkdtempSync(join(tmpdir(), "aa-openai-agents-"));
  try {
    const script = new URL("./fixtures/resume-elsewhere.mjs", import.meta.url).pathname;
    const args = [JSON.stringify(TEST_POLICY), ROOT, join(dir, "assembly.db"), join(dir, "state.json")];
    const phase = async (name: string) => {
      const { stdout } = await run(process.execPath, [script, name, ...args], { cwd: ROOT });
      return JSON.parse(stdout.trim().split("\n").at(-1)!);
    };
    expect(await phase("interrupt")).toEqual({ interrupted: ["deploy"], ran: [] });
    const resumed = await phase("resume");
    expect(resumed).toMatchObject({
      approvalId: expect.any(String),
      approval: { state: "approved", decidedBy: "alice" },
      finalOutput: "shipped",
      ran: ["deploy api"],
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 60_000);
