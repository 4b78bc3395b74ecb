/**
 * Progress on stderr for long work (`aa audit verify`, `aa audit export`): shown when stderr is a
 * terminal, or when `--progress` forces it (then one plain line per update, for logs and tests),
 * never with `--json` unless forced. Redrawn at most every 100 ms; stdout is never touched, so a
 * piped export stays byte-exact.
 */

export interface Progress {
  /**
   * `done` of `total` units (`total` undefined: a counter); no `done`: only the elapsed time moves.
   * `total` here replaces the one given at creation (the work learned its size, or it grew).
   */
  update(done?: number, total?: number): void;
  /** Final line (kept on screen): `message`, or the bar at the last `done` passed to `update`. */
  finish(message?: string): void;
}

const WIDTH = 30;
const REDRAW_MS = 100;

export function createProgress(options: {
  label: string;
  unit: string;
  total?: number;
  /** `--progress`: draw even when stderr is not a terminal. */
  force?: boolean;
  stream?: NodeJS.WriteStream;
}): Progress {
  const stream = options.stream ?? process.stderr;
  const tty = stream.isTTY === true;
  if (!tty && !options.force) return { update() {}, finish() {} };
  const started = Date.now();
  let last = 0;
  let lastDrawn: number | undefined;
  let latest: number | undefined;
  let total = options.total;
  const line = (done: number | undefined) => {
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    if (done === undefined) return `${options.label} ${seconds}s`;
    if (total === undefined || total <= 0) return `${options.label} ${done} ${options.unit} ${seconds}s`;
    const ratio = Math.min(1, done / total);
    const filled = Math.round(ratio * WIDTH);
    const bar = `${"#".repeat(filled)}${"-".repeat(WIDTH - filled)}`;
    return `${options.label} [${bar}] ${Math.floor(ratio * 100)}% ${done}/${total} ${options.unit} ${seconds}s`;
  };
  const draw = (text: string, final: boolean) => {
    if (tty) stream.write(`\r\x1b[2K${text}${final ? "\n" : ""}`);
    else stream.write(`${text}\n`);
  };
  return {
    update(done, newTotal) {
      if (newTotal !== undefined) total = newTotal;
      if (done !== undefined) latest = done;
      const now = Date.now();
      if ((done !== undefined && done === lastDrawn) || now - last < REDRAW_MS) return;
      last = now;
      if (done !== undefined) lastDrawn = done;
      draw(line(latest), false);
    },
    finish(message) {
      // The last update may have been skipped by the redraw limit: the final line shows it.
      draw(message ?? line(latest), true);
    },
  };
}
