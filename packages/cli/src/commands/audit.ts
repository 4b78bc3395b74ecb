import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { AuditEvent, EngineEvent, EngineEventType } from "@aa/engine";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { createProgress } from "../progress.js";
import { addStateOptions, ExportCounter, openState, type StateOptions, withState } from "../state.js";
import { addStoreOption, withEngine } from "../store.js";

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
  opts: StateOptions,
  json: boolean,
  lines: number,
  filter: { events?: string[]; agents?: string[] },
): Promise<void> {
  const state = await openState(opts);
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
    const head = await state.headSeq();
    const subscription = await state.subscribe(print, {
      after: Math.max(0, head - lines),
      ...(filter.events ? { events: filter.events as EngineEventType[] } : {}),
      ...(filter.agents ? { agentFilter: filter.agents } : {}),
    });
    if (!json) process.stderr.write(`following ${state.source} (Ctrl-C to stop)\n`);
    await stopped;
    subscription.unsubscribe();
  } finally {
    clearInterval(keepAlive);
    await state.close();
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

  addStateOptions(
    audit
      .command("list")
      .description("list audit records, oldest first (--newest-first: from the head back)")
      .option("--limit <n>", "records per page", "50")
      .option("--cursor <cursor>", "continue from this cursor (printed after a full page)")
      .option("--newest-first", "start at the newest record; each next page holds older ones")
      .option("--action <type>", "only this action type")
      .option(
        "--trace <id>",
        "only records of this trace (the trace_id of an assembly.trace(); docs/traces.md)",
      ),
  ).action(
    async (
      opts: StateOptions & {
        limit: string;
        cursor?: string;
        action?: string;
        trace?: string;
        newestFirst?: boolean;
      },
    ) => {
      const p = printer();
      const limit = positiveInt("limit", opts.limit);
      if (opts.trace !== undefined && opts.trace.trim() === "") {
        throw new CliError(
          "--trace must name a trace id, e.g. --trace 4bf92f3577b34da6a3ce929d0e0e4736",
          ExitCode.USAGE,
        );
      }
      const page = await withState(opts, (state) =>
        state.audit({
          limit,
          ...(opts.newestFirst ? { order: "desc" as const } : {}),
          ...(opts.cursor ? { cursor: opts.cursor } : {}),
          ...(opts.action ? { actionType: opts.action } : {}),
          ...(opts.trace !== undefined ? { traceId: opts.trace } : {}),
        }),
      );
      p.data(page, () => {
        p.table(statusColored(page.items.map(row)));
        if (page.nextCursor)
          p.out(
            color.dim(
              `more: aa audit list${opts.newestFirst ? " --newest-first" : ""} --cursor ${page.nextCursor}${opts.action ? ` --action ${opts.action}` : ""}${opts.trace !== undefined ? ` --trace ${opts.trace}` : ""}`,
            ),
          );
      });
    },
  );

  addStateOptions(
    audit
      .command("tail")
      .description("show the newest audit records; with --follow, stream events as they are recorded")
      .option("-n, --lines <n>", "how many", "10")
      .option("-f, --follow", "keep printing new events (docs/events.md) until Ctrl-C; --json: one per line")
      .option("--events <types>", "with --follow: only these event types, comma-separated")
      .option("--agent <ids>", "with --follow: only these agents, comma-separated"),
  ).action(
    async (opts: StateOptions & { lines: string; follow?: boolean; events?: string; agent?: string }) => {
      const p = printer();
      const n = positiveInt("lines", opts.lines);
      if (!opts.follow && (opts.events !== undefined || opts.agent !== undefined)) {
        throw new CliError("--events and --agent apply to --follow; add --follow", ExitCode.USAGE);
      }
      if (opts.follow) {
        const events = listOption(opts.events);
        const agents = listOption(opts.agent);
        await followEvents(opts, p.json, n, {
          ...(events ? { events } : {}),
          ...(agents ? { agents } : {}),
        });
        return;
      }
      // Newest first from the head, so the cost is the n records shown, not the chain's length.
      const last = await withState(opts, async (state) => {
        const newestFirst: AuditEvent[] = [];
        let cursor: string | undefined;
        do {
          const page = await state.audit({
            order: "desc",
            limit: Math.min(1000, n - newestFirst.length),
            ...(cursor ? { cursor } : {}),
          });
          newestFirst.push(...page.items);
          cursor = page.nextCursor;
        } while (cursor && newestFirst.length < n);
        return newestFirst.reverse();
      });
      p.data(last, () => p.table(statusColored(last.map(row))));
    },
  );

  addStateOptions(
    audit
      .command("export")
      .description("export the chain, outcomes, checkpoints and public keys as JSONL")
      .option("-o, --out <file>", "write to this file instead of stdout")
      .option("--progress", "show progress on stderr even when it is not a terminal"),
  ).action(async (opts: StateOptions & { out?: string; progress?: boolean }) => {
    const p = printer();
    const target = opts.out ? resolve(opts.out) : undefined;
    const counts = await withState(opts, async (state) => {
      const head = await state.knownHeadSeq();
      const progress = createProgress({
        label: "exporting",
        unit: "records",
        ...(head === undefined ? {} : { total: head }),
        force: opts.progress === true,
      });
      const counter = new ExportCounter();
      const out = target ? createWriteStream(target, { mode: 0o644 }) : process.stdout;
      try {
        await state.exportAudit(async (chunk) => {
          counter.feed(chunk);
          if (!out.write(chunk)) await once(out, "drain");
          progress.update(head === undefined ? counter.records : counter.lastSeq);
        });
      } finally {
        if (target) {
          await new Promise<void>((done, fail) =>
            (out as ReturnType<typeof createWriteStream>).end((error?: Error | null) =>
              error ? fail(error) : done(),
            ),
          );
        }
      }
      progress.finish(`exported ${counter.records} records`);
      return { records: counter.records, outcomes: counter.outcomes, checkpoints: counter.checkpoints };
    });
    if (target) {
      p.data({ file: target, ...counts }, () =>
        p.err(
          `exported ${counts.records} records, ${counts.outcomes} outcomes, ${counts.checkpoints} checkpoints to ${target}`,
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

  addStateOptions(
    audit
      .command("verify")
      .description(
        "verify the hash chain and signed checkpoints of a store or a gateway, or offline of an export file",
      )
      .argument("[export]", "a JSONL export (from aa audit export) to verify offline instead of the store")
      .option("--jwks <file>", "public keys obtained out of band, to verify the export's checkpoints against")
      .option("--progress", "show progress on stderr even when it is not a terminal"),
  ).action(
    async (exportFile: string | undefined, opts: StateOptions & { jwks?: string; progress?: boolean }) => {
      const p = printer();
      let result: {
        chainValid: boolean;
        checked: number;
        firstBrokenAtRowId: string | null;
        problem?: string;
        keySource?: "provided" | "embedded";
      };
      let source: string;
      // An export file and a gateway verify in one call without progress: the line shows the work
      // and the elapsed time, redrawn while it runs. A store reports per chunk: a determinate bar.
      const timed = async <T>(label: string, work: () => Promise<T>): Promise<T> => {
        const progress = createProgress({ label, unit: "", force: opts.progress === true });
        const ticker = setInterval(() => progress.update(), 200);
        try {
          return await work();
        } finally {
          clearInterval(ticker);
          progress.finish();
        }
      };
      if (exportFile) {
        if (opts.gateway !== undefined || opts.store !== undefined)
          throw new CliError("verify an export file, or a --store / --gateway, not both", ExitCode.USAGE);
        const { verifyExport } = await import("@aa/engine");
        const jwks = opts.jwks ? JSON.parse(await readFile(resolve(opts.jwks), "utf8")) : undefined;
        source = resolve(exportFile);
        result = await timed(`verifying ${source}`, () => verifyExport(source, jwks ? { jwks } : {}));
      } else {
        const verified = await withState(opts, async (state) => {
          if (state.kind === "gateway")
            return {
              source: state.source,
              result: await timed(`verifying ${state.source}`, () => state.verify()),
            };
          const progress = createProgress({
            label: "verifying",
            unit: "records",
            force: opts.progress === true,
          });
          try {
            const outcome = await state.verify(({ checked, total }) => progress.update(checked, total));
            return { source: state.source, result: outcome };
          } finally {
            progress.finish();
          }
        });
        source = verified.source;
        result = verified.result;
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
    },
  );
}
