import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { afterAll } from "vitest";

export const POLICY_YAML = `
version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when:
      - { field: metadata.pr_size, op: lt, value: 50 }
    otherwise: deny
  - name: merges-need-review
    action: pr.merge
    effect: require_approval
    approval: { timeout: 8h }
  - name: payments
    action: pay
    effect: allow
    when:
      - { field: args.amount, op: lte, value: 100 }
  - name: reads
    action: "read.*"
    effect: allow
redact:
  - { path: "$.card", mode: mask }
  - { path: "$..password", mode: hash }
`;

export const policy = compilePolicy(parsePolicy(POLICY_YAML, { source: "test" }));

/** A fresh temp directory, removed after the file's tests. */
export function tempDir(prefix = "aa-engine-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export const agent = { id: "release-bot" };
