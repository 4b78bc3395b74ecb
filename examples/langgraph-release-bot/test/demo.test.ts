/** The README's first command, run for real: the demo must tell its whole story and verify. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect, it } from "vitest";

it("runs the release bot: allowed, denied then self-corrected, held and approved, verified", {
  timeout: 60_000,
}, async () => {
  const main = new URL("../dist/main.js", import.meta.url).pathname;
  const { stdout } = await promisify(execFile)(process.execPath, [main], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  const lines = stdout.split("\n");
  const index = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));

  expect(index(/hooked\s+langchain/)).toBeGreaterThan(-1);
  expect(index(/hooked\s+langgraph/)).toBeGreaterThan(-1);
  // The model read the failed condition, then split the PR.
  const denial = index(
    /reads\s+Agent Assembly denied tool "open_pr" .*args\.lines_changed lt 50 \(actual: 120\)/,
  );
  const split = index(/calls open_pr \{"title":"Release: api"/);
  expect(denial).toBeGreaterThan(-1);
  expect(split).toBeGreaterThan(denial);
  expect(lines.filter((l) => /ran\s+open_pr → PR #\d+/.test(l))).toHaveLength(3);
  // Held, approved by the operator through the real CLI, then run.
  const held = index(/held\s+merge_release waits for a human/);
  const ran = index(/ran\s+merge_release → v2\.4\.0 shipped/);
  expect(held).toBeGreaterThan(-1);
  expect(ran).toBeGreaterThan(held);
  // The trail: 8 records, the secret token redacted, the chain verified by `aa audit verify`.
  expect(stdout).toMatch(/#2\s+denied\s+open_pr\s+CONDITIONS_DENIED \(small-prs\)/);
  expect(stdout).toMatch(/#7\s+approved\s+merge_release\s+by operator:demo/);
  expect(stdout).not.toMatch(/#\d+.*ghp_demoSecretToken/);
  expect(stdout).toMatch(/chain valid\s+8 records verified/);
});
