/** The README's command, run for real: the example must tell its whole story and verify. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";

const run = promisify(execFile);
const root = new URL("..", import.meta.url).pathname;
const main = new URL("../dist/main.js", import.meta.url).pathname;
const env = { ...process.env, NO_COLOR: "1" };

it("runs the weather assistant: allowed, denied then corrected, held and approved, verified", {
  timeout: 60_000,
}, async () => {
  // As `pnpm start` does: the import hook first, so the adapter can hook `ai` before the app imports it.
  const { stdout } = await run(process.execPath, ["--import", "@aa/adapter-vercel-ai/register", main], {
    cwd: root,
    env,
  });
  const lines = stdout.split("\n");
  const index = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));

  expect(index(/hooked\s+vercel-ai \(\d+ entry points, ai 7\.\d+\.\d+\)/)).toBeGreaterThan(-1);
  // Allowed.
  expect(index(/ran\s+get_forecast → Hamburg: storm tonight/)).toBeGreaterThan(-1);
  // Denied: the model reads the execution-denied result with the failed condition and corrects itself.
  const denial = index(
    /reads\s+execution-denied: Agent Assembly denied tool "set_thermostat" \(CONDITIONS_DENIED\) by policy "sensible-heating"\. Failed conditions: args\.celsius lte 24 \(actual: 30\)/,
  );
  const corrected = index(/agent\s+calls set_thermostat \{"celsius":24/);
  expect(denial).toBeGreaterThan(-1);
  expect(corrected).toBeGreaterThan(denial);
  expect(lines.filter((l) => /ran\s+set_thermostat/.test(l))).toEqual([
    expect.stringMatching(/heating to 24 °C/),
  ]);
  // Held: a tool-approval-request ends the run; answered at the gate and in the SDK, the resume runs it once.
  const held = index(/held\s+broadcast_alert stops the run: approval .+ \(broadcasts-need-review, pending\)/);
  const resumed = index(/resume\s+generateText/);
  const ran = index(/ran\s+broadcast_alert → sent to Hamburg-Altona/);
  expect(held).toBeGreaterThan(corrected);
  expect(resumed).toBeGreaterThan(held);
  expect(ran).toBeGreaterThan(resumed);
  expect(lines.filter((l) => /ran\s+broadcast_alert/.test(l))).toHaveLength(1);
  expect(index(/final\s+Heating is at 24 °C and the neighbours are warned/)).toBeGreaterThan(ran);
  // The trail: 6 records, the PIN masked, the chain valid.
  expect(stdout).toMatch(/#2\s+denied\s+set_thermostat\s+CONDITIONS_DENIED \(sensible-heating\)/);
  expect(stdout).toMatch(/#5\s+approved\s+broadcast_alert\s+by operator:demo: wording checked/);
  expect(stdout).toMatch(/#6\s+released\s+broadcast_alert/);
  expect(stdout).not.toMatch(/#\d+.*4711/);
  expect(stdout).toMatch(/verify\s+chainValid: true \(6 records checked\)/);
});

it("refuses to run ungoverned when node was started without the import hook (fail closed)", {
  timeout: 60_000,
}, async () => {
  const failure = await run(process.execPath, [main], { cwd: root, env }).then(
    () => undefined,
    (error: { code?: number; stderr?: string; stdout?: string }) => error,
  );
  expect(failure?.code).toBe(1);
  expect(failure?.stderr).toMatch(/ADAPTER_INSTALL_FAILED|failed to install its hooks/);
  expect(failure?.stderr).toContain("node --import @aa/adapter-vercel-ai/register");
  expect(failure?.stdout).not.toMatch(/ran\s+/);
});
