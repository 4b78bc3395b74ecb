/** The README's command, run for real: the example must tell its whole story and verify. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("runs the MCP bank assistant: allowed, denied before the server, held and approved, verified", {
  timeout: 60_000,
}, async () => {
  const main = new URL("../dist/main.js", import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [main], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  const lines = stdout.split("\n");
  const index = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));

  expect(index(/hooked\s+mcp/)).toBeGreaterThan(-1);
  expect(index(/connected\s+MCP server "bank" 1\.0\.0 over stdio/)).toBeGreaterThan(-1);
  // Allowed: the server in the child process ran the small transfer.
  expect(index(/server\s+sent 250 EUR to landlord; balance 3950 EUR/)).toBeGreaterThan(-1);
  // Denied: an isError result naming the policy and the failed condition, never sent.
  expect(
    index(
      /denied\s+Agent Assembly denied tool "transfer" \(CONDITIONS_DENIED\) by policy "small-transfers"\. Failed conditions: args\.amount lt 1000 \(actual: 2500\)/,
    ),
  ).toBeGreaterThan(-1);
  expect(index(/isError\s+true \(policy small-transfers\)/)).toBeGreaterThan(-1);
  // Held, approved by the operator loop, then run.
  const held = index(/held\s+add_payee waits for a human/);
  const approves = index(/operator\s+approves/);
  const added = index(/server\s+payee "acme-supplies" added/);
  expect(held).toBeGreaterThan(-1);
  expect(approves).toBeGreaterThan(held);
  expect(added).toBeGreaterThan(approves);
  // The server's own statement: the denied transfer never reached it.
  expect(stdout).toMatch(/the server ran: transfer 250 EUR to landlord; add_payee acme-supplies\n/);
  // The trail: 7 records, the IBAN masked, the chain valid.
  expect(stdout).toMatch(/#3\s+denied\s+transfer\s+CONDITIONS_DENIED \(small-transfers\)/);
  expect(stdout).toMatch(/#5\s+approved\s+add_payee\s+by operator:demo: payee verified by phone/);
  expect(stdout).toMatch(/#6\s+released\s+add_payee/);
  expect(stdout).not.toMatch(/#\d+.*DE89370400440532013000/);
  expect(stdout).toMatch(/verify\s+chainValid: true \(7 records checked\)/);
});
