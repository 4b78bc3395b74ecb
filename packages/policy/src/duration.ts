const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const DURATION_PATTERN = /^(?:\d{1,9}(?:ms|s|m|h|d))+$/;
const DURATION_PART = /(\d{1,9})(ms|s|m|h|d)/g;
/** Longest duration accepted: one year. Longer approval windows are almost certainly a typo. */
const MAX_DURATION_MS = 365 * 86_400_000;

/**
 * Parses a duration such as `30s`, `15m`, `8h`, `2d`, `500ms` or `1h30m` to milliseconds.
 * @throws RangeError when the text is not a duration, is zero, or is longer than 365 days.
 */
export function parseDuration(text: string): number {
  if (typeof text !== "string" || !DURATION_PATTERN.test(text)) {
    throw new RangeError(
      `Invalid duration ${JSON.stringify(text)}: write a number followed by ms, s, m, h or d, e.g. "30s", "15m", "8h", "2d" or "1h30m"`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of text.matchAll(DURATION_PART)) {
    total += Number(amount) * (UNIT_MS[unit as string] as number);
  }
  if (total <= 0)
    throw new RangeError(`Invalid duration ${JSON.stringify(text)}: it must be longer than zero`);
  if (total > MAX_DURATION_MS) {
    throw new RangeError(`Invalid duration ${JSON.stringify(text)}: it must not exceed 365d`);
  }
  return total;
}
