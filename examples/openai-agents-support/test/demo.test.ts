/** The README's command, run for real: the example must tell its whole story and verify. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("runs the support agent: allowed, denied then escalated, held as an interruption and approved, verified", {
  timeout: 60_000,
}, async () => {
  const main = new URL("../dist/main.js", import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [main], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  const lines = stdout.split("\n");
  const index = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));

  expect(index(/hooked\s+openai-agents \(2 entry points, 0\.20\.\d+\)/)).toBeGreaterThan(-1);
  // Allowed.
  expect(index(/ran\s+lookup_order → A-1001: espresso machine, 180 EUR/)).toBeGreaterThan(-1);
  // Denied: the model reads the failed condition in the tool result, then escalates; the refund never ran.
  const denial = index(
    /reads\s+Agent Assembly denied tool "issue_refund" \(CONDITIONS_DENIED\) by policy "small-refunds"\. Failed conditions: args\.amount lte 50 \(actual: 180\)/,
  );
  const escalates = index(/agent\s+calls escalate_refund \{.*"amount":180/);
  expect(denial).toBeGreaterThan(-1);
  expect(escalates).toBeGreaterThan(denial);
  expect(stdout).not.toMatch(/ran\s+issue_refund/);
  // Held: the run stops with an interruption, the app approves it, the resumed run runs the call once.
  const held = index(
    /held\s+escalate_refund stops the run: approval .+ \(escalations-need-a-supervisor, pending\)/,
  );
  const resumed = index(/resume\s+run\(agent, result\.state\)/);
  const ran = index(/ran\s+escalate_refund → 180 EUR refunded on A-1001/);
  expect(held).toBeGreaterThan(escalates);
  expect(resumed).toBeGreaterThan(held);
  expect(ran).toBeGreaterThan(resumed);
  expect(lines.filter((l) => /ran\s+escalate_refund/.test(l))).toHaveLength(1);
  expect(index(/final\s+Done: refunded 180 EUR on A-1001/)).toBeGreaterThan(ran);
  // The trail: 5 records, the e-mail masked, the chain valid.
  expect(stdout).toMatch(/#2\s+denied\s+issue_refund\s+CONDITIONS_DENIED \(small-refunds\)/);
  expect(stdout).toMatch(/#4\s+approved\s+escalate_refund\s+by operator:demo: photos of the damage checked/);
  expect(stdout).toMatch(/#5\s+released\s+escalate_refund/);
  expect(stdout).not.toMatch(/#\d+.*dana@example\.com/);
  expect(stdout).toMatch(/verify\s+chainValid: true \(5 records checked\)/);
});
