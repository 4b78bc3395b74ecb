/**
 * Statistics for `aa bench`: percentiles of latency samples and medians of repeated rounds.
 *
 * The repository's developer benchmarks (scripts/bench-util.mjs) compute percentiles the same way
 * (sorted samples, the value at index floor(q * n)); they keep their own copy because a package
 * benchmark must run after building only the package it measures (docs/decisions.md, `aa bench`).
 */

/** Percentiles of one set of samples, in the samples' unit. */
export interface Summary {
  p50: number;
  p99: number;
  min: number;
  max: number;
  /** How many samples. */
  n: number;
}

/** p50 / p99 / min / max of `samples` (nearest rank: the sorted value at floor(q * n)). */
export function summarize(samples: ArrayLike<number>): Summary {
  if (samples.length === 0) throw new RangeError("summarize: no samples");
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: at(0.5), p99: at(0.99), min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** The median of `values` (the mean of the two middle values when their count is even). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median: no values");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** `value` rounded to `digits` decimals (figures in reports; ratios are computed from these). */
export function round(value: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}

/** Nanoseconds since an arbitrary origin, as a number (hrtime; fine for durations under months). */
export const nowNs = (): number => Number(process.hrtime.bigint());
