import { randomUUID } from "node:crypto";

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits. Time-ordered ids keep the
 * store's id index append-mostly (random v4 ids scatter writes across the whole index).
 */
let lastMs = -1;
let prefix = "";

export function uuidv7(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const ms = now.toString(16).padStart(12, "0");
    prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
  }
  return prefix + randomUUID().slice(15);
}

let isoMs = -1;
let isoText = "";

/** `Date.now()` and its ISO 8601 text, formatted at most once per millisecond. */
export function nowWithIso(): { ms: number; iso: string } {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return { ms, iso: isoText };
}
