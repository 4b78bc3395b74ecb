/** Output for people (tables) and scripts (`--json`), and exit codes that mean something. */

/** Exit codes of `aa`. Documented in the CLI README. */
export const ExitCode = {
  OK: 0,
  /** Unexpected failure. */
  ERROR: 1,
  /** Bad usage or invalid input (a policy that does not validate, an unknown id format). */
  USAGE: 2,
  /** The audit trail or a receipt failed verification. */
  VERIFY_FAILED: 3,
  /** The thing asked for does not exist. */
  NOT_FOUND: 4,
  /** A dry run was denied (`aa policy test`). */
  DENIED: 5,
  /** The gateway could not be reached, timed out, or answered outside the wire contract (`GATE_UNAVAILABLE`). */
  UNAVAILABLE: 6,
  /** The gateway refused the API key (`UNAUTHENTICATED`) or its role (`FORBIDDEN`). */
  FORBIDDEN: 7,
} as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = ExitCode.ERROR,
  ) {
    super(message);
    this.name = "CliError";
  }
}

export interface Printer {
  json: boolean;
  out(text: string): void;
  err(text: string): void;
  table(rows: Record<string, unknown>[], columns?: string[]): void;
  data(value: unknown, human: () => void): void;
}

const useColor = (stream: NodeJS.WriteStream) => stream.isTTY === true && !process.env.NO_COLOR;

export const color = {
  green: (s: string) => (useColor(process.stdout) ? `\x1b[32m${s}\x1b[0m` : s),
  red: (s: string) => (useColor(process.stdout) ? `\x1b[31m${s}\x1b[0m` : s),
  yellow: (s: string) => (useColor(process.stdout) ? `\x1b[33m${s}\x1b[0m` : s),
  dim: (s: string) => (useColor(process.stdout) ? `\x1b[2m${s}\x1b[0m` : s),
  bold: (s: string) => (useColor(process.stdout) ? `\x1b[1m${s}\x1b[0m` : s),
};

function cell(value: unknown): string {
  if (value === undefined || value === null) return "";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** A plain aligned text table; long cells are cut so a row fits a terminal line. */
export function formatTable(rows: Record<string, unknown>[], columns?: string[], maxCell = 60): string {
  const cols = columns ?? [...new Set(rows.flatMap((r) => Object.keys(r)))];
  const cells = rows.map((r) =>
    cols.map((c) => {
      const text = cell(r[c]).replace(/\s+/g, " ");
      return text.length > maxCell ? `${text.slice(0, maxCell - 1)}…` : text;
    }),
  );
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (values: string[]) =>
    values
      .map((v, i) => v.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(cols.map((c) => c.toUpperCase())), ...cells.map(line)].join("\n");
}

export function createPrinter(json: boolean): Printer {
  return {
    json,
    out: (text) => process.stdout.write(`${text}\n`),
    err: (text) => process.stderr.write(`${text}\n`),
    table(rows, columns) {
      process.stdout.write(`${rows.length === 0 ? "(none)" : formatTable(rows, columns)}\n`);
    },
    data(value, human) {
      if (json) process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
      else human();
    },
  };
}
