/** The `aa` command tree. */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { registerAgents } from "./commands/agents.js";
import { registerApprovals } from "./commands/approvals.js";
import { registerAudit } from "./commands/audit.js";
import { registerBench } from "./commands/bench.js";
import { registerGateway } from "./commands/gateway.js";
import { registerInit } from "./commands/init.js";
import { registerKeys } from "./commands/keys.js";
import { registerPolicy } from "./commands/policy.js";
import { registerPosture } from "./commands/posture.js";
import { registerProxy } from "./commands/proxy.js";
import { registerReceipts } from "./commands/receipts.js";
import { CliError, createPrinter, ExitCode, type Printer } from "./output.js";

const version = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

export function buildProgram(): Command {
  const program = new Command("aa")
    .description("Agent Assembly: govern, approve and audit what your AI agents do")
    .version(version)
    .option("--json", "machine-readable output")
    .showHelpAfterError()
    .exitOverride();
  const printer = (): Printer => createPrinter(Boolean(program.opts().json));
  registerInit(program, printer);
  registerPolicy(program, printer);
  registerAudit(program, printer);
  registerApprovals(program, printer);
  registerAgents(program, printer);
  registerPosture(program, printer);
  registerReceipts(program, printer);
  registerGateway(program, printer);
  registerProxy(program, printer);
  registerKeys(program, printer);
  registerBench(program, printer);
  return program;
}

/** Run `aa` with `argv` (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : ExitCode.OK;
  } catch (error) {
    if (error instanceof CommanderError) {
      return error.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;
    }
    const code = error instanceof CliError ? error.exitCode : codeFor(error);
    const message = (error as Error)?.message ?? String(error);
    if (program.opts().json)
      process.stdout.write(
        `${JSON.stringify({ error: { code: (error as { code?: string }).code ?? "ERROR", message } })}\n`,
      );
    else process.stderr.write(`aa: ${message}\n`);
    return code;
  }
}

function codeFor(error: unknown): number {
  const code = (error as { code?: unknown })?.code;
  if (code === "POLICY_INVALID") return ExitCode.USAGE;
  if (code === "GATE_UNAVAILABLE") return ExitCode.UNAVAILABLE;
  // EngineError carries `status`; a gateway's AssemblyError carries it in `details.status`.
  const status =
    (error as { status?: unknown })?.status ?? (error as { details?: { status?: unknown } })?.details?.status;
  if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") return ExitCode.FORBIDDEN;
  if (status === 404) return ExitCode.NOT_FOUND;
  if (typeof status === "number" && status >= 400 && status < 500) return ExitCode.USAGE;
  return ExitCode.ERROR;
}
