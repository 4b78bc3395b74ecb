/**
 * The dual package hazard: a CommonJS app gets `Agent` from the CJS build of @openai/agents-core.
 * Runs a real CJS host in a child process (Node 22 `require()`s the ESM @aa/core and adapter).
 */
import { execFile } from "node:child_process";
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
});
