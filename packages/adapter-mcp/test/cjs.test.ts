/**
 * The dual package hazard: a CommonJS app gets Client and McpServer from the CJS build of the SDK.
 * Runs a real CJS host in a child process (Node 22 `require()`s the ESM @aa/core and this adapter).
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { TEST_POLICY } from "./helpers.js";

const run = promisify(execFile);
const ROOT = new URL("..", import.meta.url).pathname;

it("governs the CJS Client and the CJS server in a CommonJS host, and restores them at shutdown", async () => {
  const script = new URL("./fixtures/cjs-host.cjs", import.meta.url).pathname;
  const { stdout } = await run(process.execPath, [script, JSON.stringify(TEST_POLICY), ROOT], { cwd: ROOT });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);
  expect(result.entryPoints).toContain("@modelcontextprotocol/sdk/client Client.prototype.callTool (cjs)");
  expect(result.entryPoints).toContain(
    "@modelcontextprotocol/sdk/server Server.prototype._onrequest [tools/call registered before install] (cjs)",
  );
  expect(result.allowed).toBe("sent 5");
  expect(result.denied.isError).toBe(true);
  expect(result.denied.text).toContain("args.amount lt 100 (actual: 500)");
  expect(result.bypass.isError).toBe(true);
  expect(result.bypass.text).toContain("args.amount lt 100 (actual: 600)");
  // Only the allowed call and the post-shutdown call went on the wire and ran.
  expect(result.sent).toEqual([5, 700]);
  expect(result.ran).toEqual([5, 700]);
  expect(result.afterShutdown).toBe("sent 700");
  expect(result.restored).toBe(true);
  // The allowed call is decided on both sides (client and the in-process server); denials once.
  expect(result.audit).toEqual([
    ["client", "executed", 5],
    ["server", "executed", 5],
    ["client", "denied", 500],
    ["client", "denied", 600],
    ["server", "denied", 800],
  ]);
  expect(result.late).toEqual({
    ran: [],
    isError: true,
    text: expect.stringContaining("args.amount lt 100 (actual: 800)"),
  });
});
