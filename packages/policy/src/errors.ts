import type { PolicyIssue } from "./types.js";

/** Formats one issue as `source:line path: message (hint)`. */
export function formatPolicyIssue(issue: PolicyIssue): string {
  const where = issue.line === undefined ? issue.source : `${issue.source}:${issue.line}`;
  const path = issue.path === "" ? "(document)" : issue.path;
  const hint = issue.hint === undefined ? "" : ` (${issue.hint})`;
  return `${where} ${path}: ${issue.message}${hint}`;
}

/** Thrown by {@link parsePolicy} / {@link validatePolicy} when a policy is not valid. Lists every issue found. */
export class PolicyValidationError extends Error {
  readonly code = "POLICY_INVALID" as const;
  readonly issues: PolicyIssue[];

  constructor(issues: PolicyIssue[]) {
    const count = issues.length === 1 ? "1 issue" : `${issues.length} issues`;
    super(`Invalid policy (${count}):\n${issues.map((issue) => `  ${formatPolicyIssue(issue)}`).join("\n")}`);
    this.name = "PolicyValidationError";
    this.issues = issues;
  }
}
