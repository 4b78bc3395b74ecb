import { readFileSync } from "node:fs";
import { extname, resolve } from "node:path";
import { compilePolicy, type EvaluationInput, PolicyValidationError, parsePolicy } from "@aa/policy";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";

/** Reads and validates a policy file (YAML, or JSON by extension); unreadable is exit 4. */
export function loadPolicyFile(path: string) {
  const file = resolve(path);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    throw new CliError(`cannot read ${file}: ${(error as Error).message}`, ExitCode.NOT_FOUND);
  }
  return {
    file,
    document: parsePolicy(text, { source: file, format: extname(file) === ".json" ? "json" : "yaml" }),
  };
}

/** `--<name> <json>` parsed, or a usage error naming the option. */
export function parseJsonOption(name: string, value: string | undefined): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value);
  } catch (error) {
    throw new CliError(`--${name} must be JSON: ${(error as Error).message}`, ExitCode.USAGE);
  }
}

export function registerPolicy(program: Command, printer: () => Printer): void {
  const policy = program.command("policy").description("check and try policies");

  policy
    .command("check")
    .description("validate a policy file; problems are listed with line numbers")
    .argument("[file]", "policy file", "aa.policy.yaml")
    .action((file: string) => {
      const p = printer();
      try {
        const { file: path, document } = loadPolicyFile(file);
        const compiled = compilePolicy(document);
        p.data({ valid: true, file: path, policies: document.policies.length, hash: compiled.hash }, () =>
          p.out(
            `${color.green("valid")} ${path}: ${document.policies.length} policies, hash ${compiled.hash.slice(0, 16)}…`,
          ),
        );
      } catch (error) {
        if (error instanceof PolicyValidationError) {
          p.data({ valid: false, issues: error.issues }, () =>
            p.err(`${color.red("invalid")} ${error.message}`),
          );
          process.exitCode = ExitCode.USAGE;
          return;
        }
        throw error;
      }
    });

  policy
    .command("test")
    .description("dry-run the decision for one call (nothing is recorded)")
    .argument("<action>", "action type, e.g. open_pr")
    .option("--policy <file>", "policy file", "aa.policy.yaml")
    .option("--args <json>", "call arguments as JSON")
    .option("--metadata <json>", "call metadata as JSON")
    .option("--agent <id>", "agent id", "cli")
    .action((action: string, opts: { policy: string; args?: string; metadata?: string; agent: string }) => {
      const p = printer();
      const { document } = loadPolicyFile(opts.policy);
      const input: EvaluationInput = {
        actionType: action,
        args: parseJsonOption("args", opts.args),
        metadata: parseJsonOption("metadata", opts.metadata) as Record<string, unknown> | undefined,
        agent: { id: opts.agent },
        tool: { name: action },
      };
      const decision = compilePolicy(document).evaluate(input);
      p.data(decision, () => {
        const label =
          decision.effect === "allow"
            ? color.green("allow")
            : decision.effect === "deny"
              ? color.red("deny")
              : color.yellow("require_approval");
        p.out(`${label}  ${decision.message}`);
        if (decision.conditionsEvaluated.length > 0) {
          p.table(
            decision.conditionsEvaluated.map((c) => ({
              policy: c.policy,
              field: c.field,
              op: c.operator,
              expected: c.expected,
              actual: c.actual,
              result: c.result ? "pass" : "FAIL",
            })),
          );
        }
      });
      if (decision.effect === "deny") process.exitCode = ExitCode.DENIED;
    });
}
