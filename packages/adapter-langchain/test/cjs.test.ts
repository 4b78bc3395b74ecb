/**
 * The dual package hazard: a CommonJS app gets tools from the CJS build of @langchain/core.
 * Runs a real CJS host in a child process (Node 22 `require()`s the ESM @aa/core).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { TEST_POLICY } from "./helpers.js";

const run = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;

it("governs tools built from the CJS build in a CommonJS host", async () => {
  const script = new URL("./fixtures/cjs-agent.cjs", import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [script, JSON.stringify(TEST_POLICY), ROOT], { cwd: ROOT });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  expect(result.entryPoints).toContain("@langchain/core/tools StructuredTool.prototype.call (cjs)");
  expect(result.allowed).toBe("sent 5");
  expect(result.denied).toEqual({ name: "AssemblyDeniedError", reason: "CONDITIONS_DENIED" });
  expect(result.agentDenial.status).toBe("error");
  expect(result.agentDenial.content).toContain("args.amount lt 100 (actual: 700)");
  expect(result.afterShutdown).toBe("sent 600");
  expect(result.ran).toEqual([5, 600]);
});
