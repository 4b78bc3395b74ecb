/** Progress of a long pass over a chain (verify, export), reported per chunk. */

import type { ChainProgress } from "./types.js";

/** Called with the number of records checked so far (and the chain size read at the start). */
export type ProgressSink = (progress: ChainProgress) => void;

/**
 * Wraps a caller's `onProgress` so `total` never falls below `checked` (other writers may append
 * while a pass runs) and `checked` never goes back.
 */
export function progressReporter(
  onProgress: ProgressSink,
  total: number,
): { report(checked: number): void; done(checked: number): void } {
  let last = -1;
  let size = total;
  const report = (checked: number) => {
    if (checked < last) return;
    last = checked;
    if (checked > size) size = checked;
    onProgress({ checked, total: size });
  };
  return {
    report,
    // A complete pass ends at `checked === total`, even when the chain shrank under it or when the
    // last chunk was already reported.
    done(checked) {
      if (checked < last || (checked === last && checked === size)) return;
      size = checked;
      last = checked;
      onProgress({ checked, total: size });
    },
  };
}
