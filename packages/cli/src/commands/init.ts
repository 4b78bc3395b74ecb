import { existsSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { CliError, ExitCode, type Printer } from "../output.js";

/** The starter policy `aa init` writes: every field commented, fail closed. */
export const STARTER_POLICY = `# Agent Assembly policy. Reference: docs/policy.md
# Every tool call an agent makes is matched against these policies by its action type
# (a framework tool's action type is its tool name). Nothing matches -> denied (fail closed).
version: 1
default: deny

policies:
  # Let the agent read freely.
  - name: reads
    action: "read_*"          # glob: * stays within a dot-separated segment, ** crosses segments
    effect: allow

  # Allow small pull requests; a bigger one is denied and the agent is told why,
  # so it can split the work.
  - name: small-prs
    action: open_pr
    effect: allow
    when:                     # all must pass for the effect
      - { field: args.lines_changed, op: lt, value: 50 }
    otherwise: deny           # deny | require_approval

  # Merges wait for a human: aa approvals list / aa approvals approve <id>
  - name: merges-need-review
    action: merge_pr
    effect: require_approval
    approval: { timeout: 8h }

# Redacted before anything is stored (mask | hash | drop).
redact:
  - { path: "$..password", mode: mask }
  - { path: "$..token", mode: hash }
`;

export function registerInit(program: Command, printer: () => Printer): void {
  program
    .command("init")
    .description("write a commented starter aa.policy.yaml in the current directory")
    .option("-f, --force", "overwrite an existing aa.policy.yaml")
    .option("--file <path>", "where to write the policy", "aa.policy.yaml")
    .action((opts: { force?: boolean; file: string }) => {
      const file = resolve(opts.file);
      if (existsSync(file) && !opts.force) {
        throw new CliError(`${file} already exists; use --force to overwrite it`, ExitCode.USAGE);
      }
      writeFileSync(file, STARTER_POLICY);
      printer().data({ written: file }, () =>
        printer().out(`wrote ${file}\nnext: edit it, then run "aa policy check"`),
      );
    });
}
