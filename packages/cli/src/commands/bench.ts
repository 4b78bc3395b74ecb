/**
 * `aa bench`: what governance costs on the operator's own machine. Embedded (default): with their
 * policy and a temporary store, each figure beside a baseline measured in the same run. Against a
 * gateway (`--gateway`): decisions per second and latency over HTTP beside the gateway's bare
 * round trip. See docs/cli.md (`aa bench`).
 */
import { existsSync } from "node:fs";
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { compilePolicy } from "@aa/policy";
import type { Command } from "commander";
import { EMBEDDED_SIZES, type EmbeddedBenchReport, runEmbeddedBench } from "../bench/embedded.js";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { loadPolicyFile, parseJsonOption } from "./policy.js";

/** The action type of every bench decision sent to a gateway (so its audit records are recognisable). */
export const BENCH_ACTION = "aa.bench";

interface BenchOptions {
  policy: string;
  action: string;
  args?: string;
  metadata?: string;
  concurrency: string;
  rounds?: string;
  quick?: boolean;
}

/** `--<name> <n>`: an integer from `min` to `max`, or a usage error saying so. */
export function parseCount(name: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CliError(
      `--${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      ExitCode.USAGE,
    );
  }
  return value;
}

const fmtUs = (us: number) => (us >= 1000 ? `${(us / 1000).toFixed(2)} ms` : `${us.toFixed(2)} µs`);
const fmtRate = (perSecond: number, unit: string) =>
  `${Math.round(perSecond).toLocaleString("en-US")} ${unit}/s`;

/** Machine context printed with every report: figures only mean something next to it. */
function environment() {
  return {
    node: process.version,
    platform: `${process.platform}/${process.arch}`,
    loadAverage: loadavg()[0]!,
  };
}

function printEmbedded(p: Printer, report: EmbeddedBenchReport, policyFile: string, policyHash: string) {
  const { call, decision, durable, groupCommit, verify } = report;
  const outcome =
    call.status === "denied"
      ? color.red(`denied (${call.denialReason ?? "?"})`)
      : call.status === "executed"
        ? color.green("executed")
        : color.yellow(call.status);
  p.out(
    `aa bench (embedded): policy ${policyFile} (hash ${policyHash.slice(0, 12)}…), temporary store, ` +
      `${report.rounds} rounds, medians`,
  );
  p.out(`call ${call.actionType} -> ${outcome}${call.policyName ? ` by ${call.policyName}` : ""}\n`);
  p.table(
    [
      {
        measure: "bare async function call (baseline)",
        p50: fmtUs(decision.bareCall.p50Us),
        p99: fmtUs(decision.bareCall.p99Us),
      },
      {
        measure: "governed decision (policy, no I/O)",
        p50: fmtUs(decision.governed.p50Us),
        p99: fmtUs(decision.governed.p99Us),
        "vs baseline": `+${fmtUs(decision.addedP50Us)} p50`,
      },
      {
        measure: `bare SQLite insert, 1 row/txn, ${durable.recordBytes} B (baseline)`,
        p50: fmtUs(durable.bareInsert.p50Us),
        p99: fmtUs(durable.bareInsert.p99Us),
      },
      {
        measure: "governed decision + audit committed (WAL)",
        p50: fmtUs(durable.governed.p50Us),
        p99: fmtUs(durable.governed.p99Us),
        "vs baseline": `${durable.ratioP50.toFixed(2)}x p50`,
      },
      {
        measure: `bare SQLite insert, ${groupCommit.concurrency} rows/txn (ceiling)`,
        rate: fmtRate(groupCommit.bareBatchedInsertRowsPerSecond, "rows"),
      },
      {
        measure: `group commit, ${groupCommit.concurrency} concurrent callers`,
        rate: fmtRate(groupCommit.decisionsPerSecond, "decisions"),
        "vs baseline": `${groupCommit.ratio.toFixed(2)}x`,
      },
      {
        measure: `verify, ${verify.rows.toLocaleString("en-US")} records`,
        rate: fmtRate(verify.rowsPerSecond, "rows"),
        "vs baseline": verify.chainValid ? "chain valid" : color.red("CHAIN BROKEN"),
      },
    ],
    ["measure", "p50", "p99", "rate", "vs baseline"],
  );
  if (Object.keys(call.statuses).length > 1) {
    p.out(
      color.yellow(
        `\nthe decision changed during the run (${JSON.stringify(call.statuses)}): a budget or rate limit in the policy applied; figures mix both paths`,
      ),
    );
  }
}

export function registerBench(program: Command, printer: () => Printer): void {
  program
    .command("bench")
    .description(
      "measure what governance costs on this machine: with your policy and a temporary store (nothing of yours is touched)",
    )
    .option("--policy <file>", "policy file", "aa.policy.yaml")
    .option("--action <type>", "action type of the benchmarked call", BENCH_ACTION)
    .option("--args <json>", "arguments of the benchmarked call, as JSON")
    .option("--metadata <json>", "metadata of the benchmarked call, as JSON")
    .option("--concurrency <n>", "concurrent callers for group commit", "100")
    .option("--rounds <n>", "measurement rounds (default 5, 3 with --quick)")
    .option("--quick", "a short run (about a second): fewer rounds and calls")
    .addHelpText(
      "after",
      "\nEvery figure is reported beside a baseline measured in the same run (medians over rounds).\n" +
        "Exit codes: 0 done, 2 bad option or invalid policy, 3 the temporary chain did not verify, 4 no policy file.",
    )
    .action(async (opts: BenchOptions) => {
      const p = printer();
      const size = { ...EMBEDDED_SIZES[opts.quick ? "quick" : "full"] };
      if (opts.rounds !== undefined) size.rounds = parseCount("rounds", opts.rounds, 1, 100);
      const concurrency = parseCount("concurrency", opts.concurrency, 1, 10_000);
      const args = parseJsonOption("args", opts.args);
      const metadata = parseJsonOption("metadata", opts.metadata);
      if (
        metadata !== undefined &&
        (metadata === null || typeof metadata !== "object" || Array.isArray(metadata))
      ) {
        throw new CliError("--metadata must be a JSON object, e.g. '{\"pr_size\":12}'", ExitCode.USAGE);
      }
      if (opts.action.trim() === "") throw new CliError("--action must not be empty", ExitCode.USAGE);
      const policyFile = resolve(opts.policy);
      if (!existsSync(policyFile)) {
        throw new CliError(
          `no policy at ${policyFile}; write one with \`aa init\` or pass --policy <file>`,
          ExitCode.NOT_FOUND,
        );
      }
      const policy = compilePolicy(loadPolicyFile(policyFile).document);
      const before = environment();
      const report = await runEmbeddedBench({
        policy,
        call: {
          actionType: opts.action,
          toolName: opts.action,
          ...(args !== undefined ? { args } : {}),
          ...(metadata !== undefined ? { metadata: metadata as Record<string, unknown> } : {}),
        },
        concurrency,
        size,
        ...(p.json ? {} : { onStage: (stage: string) => p.err(color.dim(`aa bench: ${stage}`)) }),
      });
      const full = {
        ...report,
        policy: { file: policyFile, hash: policy.hash },
        environment: { ...before, loadAverageAtEnd: loadavg()[0]! },
      };
      p.data(full, () => printEmbedded(p, report, policyFile, policy.hash));
      if (!report.verify.chainValid) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}
