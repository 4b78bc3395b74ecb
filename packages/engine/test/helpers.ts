import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { afterAll } from "vitest";
import { type RecordFields, sha256Hex } from "../src/chain/record.js";
import { uuidv7 } from "../src/ids.js";

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

/**
 * The fields of an executed action record for store-level tests (no engine): an allowed `pr.open`
 * by `agent-1` unless `overrides` say otherwise; `argsHash` follows `args`.
 */
export function actionRecordFields(overrides: Partial<RecordFields> & { org: string }): RecordFields {
  const agentId = overrides.agent ?? "agent-1";
  const args = overrides.args ?? {};
  return {
    id: uuidv7(),
    kind: "action",
    time: new Date().toISOString(),
    agent: agentId,
    delegation: [agentId],
    actionType: "pr.open",
    tool: null,
    framework: null,
    args,
    argsHash: `sha256:${sha256Hex(JSON.stringify(args))}`,
    metadata: null,
    dataAccessed: null,
    status: "executed",
    denialReason: null,
    policyName: "small-prs",
    policyHash: "0".repeat(64),
    conditions: [],
    approvalId: null,
    traceId: null,
    toolCallId: null,
    mode: "enforce",
    shadow: null,
    failOpen: false,
    reason: null,
    redactionRules: [],
    ...overrides,
  };
}
