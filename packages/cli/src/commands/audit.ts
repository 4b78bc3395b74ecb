import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { AuditEvent, EngineEvent, EngineEventType } from "@aa/engine";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { addStoreOption, openOperatorEngine, withEngine } from "../store.js";

function row(event: AuditEvent): Record<string, unknown> {
  return {
    seq: event.seq,
    time: event.time,
    agent: event.agent,
    kind: event.kind,
    action: event.action_type,
    status: event.status ?? "",
    reason: event.denial_reason ?? event.reason ?? "",
    policy: event.policy_name ?? "",
    outcome: event.outcome?.status ?? "",
  };
}

function statusColored(rows: Record<string, unknown>[]): Record<string, unknown>[] {
  return rows.map((r) => ({
    ...r,
    status:
      r.status === "executed"
        ? color.green(String(r.status))
        : r.status === "denied"
          ? color.red(String(r.status))
          : color.yellow(String(r.status)),
  }));
}

function eventLine(event: EngineEvent): string {
  const { data } = event;
  const detail = [data.denialReason, data.resolution, data.trigger, data.reason]
    .filter((v) => typeof v === "string" && v !== "")
    .join(" ");
  return [String(event.seq), event.time, event.type, event.agentId, event.actionType, detail]
    .join("  ")
    .trimEnd();
}

function listOption(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(",")
    .map((v) => v.trim())
    .filter(Boolean);
}

/**
 * `aa audit tail --follow`: prints the events of the last `lines` records, then every new one
 * (also those other processes append) until SIGINT/SIGTERM. `--json` writes one event per line.
 */
async function followEvents(
  storeOption: string,
  json: boolean,
  lines: number,
  filter: { events?: string[]; agents?: string[] },
): Promise<void> {
  const engine = await openOperatorEngine(storeOption);
  // The engine's poll timer does not hold the process open; this does, until a signal.
  const keepAlive = setInterval(() => {}, 1 << 30);
  try {
    // Listen for the stop signal before anything is printed, so a signal is never missed.
    const stopped = new Promise<void>((done) => {
      process.once("SIGINT", done);
      process.once("SIGTERM", done);
    });
    const print = (event: EngineEvent) =>
      process.stdout.write(`${json ? JSON.stringify(event) : eventLine(event)}\n`);
    const probe = await engine.subscribe(() => {});
    const head = probe.lastSeq;
    probe.unsubscribe();
    const subscription = await engine.subscribe(print, {
      after: Math.max(0, head - lines),
      ...(filter.events ? { events: filter.events as EngineEventType[] } : {}),
      ...(filter.agents ? { agentFilter: filter.agents } : {}),
    });
    if (!json) process.stderr.write(`following ${resolve(storeOption)} (Ctrl-C to stop)\n`);
    await stopped;
    subscription.unsubscribe();
  } finally {
    clearInterval(keepAlive);
    await engine.close();
  }
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new CliError(`--${name} must be a positive integer`, ExitCode.USAGE);
  return n;
}

export function registerAudit(program: Command, printer: () => Printer): void {
  const audit = program.command("audit").description("read, export and verify the audit trail");

  addStoreOption(
    audit
      .command("list")
      .description("list audit records, oldest first")
      .option("--limit <n>", "records per page", "50")
      .option("--cursor <cursor>", "continue after this cursor")
      .option("--action <type>", "only this action type"),
  ).action(async (opts: { store: string; limit: string; cursor?: string; action?: string }) => {
    const p = printer();
    const limit = positiveInt("limit", opts.limit);
    const page = await withEngine(opts.store, (engine) =>
      engine.audit({
        limit,
        ...(opts.cursor ? { cursor: opts.cursor } : {}),
        ...(opts.action ? { actionType: opts.action } : {}),
      }),
    );
    p.data(page, () => {
      p.table(statusColored(page.items.map(row)));
      if (page.nextCursor) p.out(color.dim(`more: aa audit list --cursor ${page.nextCursor}`));
    });
  });

  addStoreOption(
    audit
      .command("tail")
      .description("show the newest audit records; with --follow, stream events as they are recorded")
      .option("-n, --lines <n>", "how many", "10")
      .option("-f, --follow", "keep printing new events (docs/events.md) until Ctrl-C; --json: one per line")
      .option("--events <types>", "with --follow: only these event types, comma-separated")
      .option("--agent <ids>", "with --follow: only these agents, comma-separated"),
  ).action(
    async (opts: { store: string; lines: string; follow?: boolean; events?: string; agent?: string }) => {
      const p = printer();
      const n = positiveInt("lines", opts.lines);
      if (!opts.follow && (opts.events !== undefined || opts.agent !== undefined)) {
        throw new CliError("--events and --agent apply to --follow; add --follow", ExitCode.USAGE);
      }
      if (opts.follow) {
        const events = listOption(opts.events);
        const agents = listOption(opts.agent);
        await followEvents(opts.store, p.json, n, {
          ...(events ? { events } : {}),
          ...(agents ? { agents } : {}),
        });
        return;
      }
      const last = await withEngine(opts.store, async (engine) => {
        const kept: AuditEvent[] = [];
        let cursor: string | undefined;
        do {
          const page = await engine.audit({ limit: 1000, ...(cursor ? { cursor } : {}) });
          kept.push(...page.items);
          if (kept.length > n) kept.splice(0, kept.length - n);
          cursor = page.nextCursor;
        } while (cursor);
        return kept;
      });
      p.data(last, () => p.table(statusColored(last.map(row))));
    },
  );

  addStoreOption(
    audit
      .command("export")
      .description("export the chain, outcomes, checkpoints and public keys as JSONL")
      .option("-o, --out <file>", "write to this file instead of stdout"),
  ).action(async (opts: { store: string; out?: string }) => {
    const p = printer();
    const target = opts.out ? resolve(opts.out) : process.stdout;
    const counts = await withEngine(opts.store, (engine) => engine.exportAudit(target));
    if (opts.out) {
      p.data({ file: target, ...counts }, () =>
        p.err(
          `exported ${counts.records} records, ${counts.outcomes} outcomes, ${counts.checkpoints} checkpoints to ${String(target)}`,
        ),
      );
    }
  });

  addStoreOption(
    audit
      .command("keys")
      .description("print the public keys (JWKS) that sign checkpoints and receipts, for auditors")
      .option("--rotate", "first rotate the signing key (old public keys stay published)"),
  ).action(async (opts: { store: string; rotate?: boolean }) => {
    const p = printer();
    const { jwks, rotated } = await withEngine(opts.store, async (engine) => {
      const kid = opts.rotate ? await engine.rotateSigningKey() : undefined;
      return { jwks: engine.jwks(), rotated: kid };
    });
    if (rotated) p.err(`rotated: new signing key ${rotated}; ${jwks.keys.length} public keys published`);
    process.stdout.write(`${JSON.stringify(jwks, null, 2)}\n`);
  });

  addStoreOption(
    audit
      .command("verify")
      .description("verify the hash chain and signed checkpoints of a store, or offline of an export file")
      .argument("[export]", "a JSONL export (from aa audit export) to verify offline instead of the store")
      .option(
        "--jwks <file>",
        "public keys obtained out of band, to verify the export's checkpoints against",
      ),
  ).action(async (exportFile: string | undefined, opts: { store: string; jwks?: string }) => {
    const p = printer();
    let result: {
      chainValid: boolean;
      checked: number;
      firstBrokenAtRowId: string | null;
      problem?: string;
      keySource?: "provided" | "embedded";
    };
    let source: string;
    if (exportFile) {
      const { verifyExport } = await import("@aa/engine");
      const jwks = opts.jwks ? JSON.parse(await readFile(resolve(opts.jwks), "utf8")) : undefined;
      source = resolve(exportFile);
      result = await verifyExport(source, jwks ? { jwks } : {});
    } else {
      source = resolve(opts.store);
      result = await withEngine(opts.store, (engine) => engine.verify());
    }
    p.data({ source, ...result }, () => {
      if (result.chainValid)
        p.out(`${color.green("✔ chain valid")}  ${result.checked} records verified (${source})`);
      else {
        p.out(`${color.red("✘ chain BROKEN")}  after ${result.checked} records (${source})`);
        if (result.firstBrokenAtRowId) p.out(`  first broken record: ${result.firstBrokenAtRowId}`);
        if (result.problem) p.out(`  problem: ${result.problem}`);
      }
    });
    if (!result.chainValid) process.exitCode = ExitCode.VERIFY_FAILED;
  });
}
