import { randomFillSync } from "node:crypto";

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits. Time-ordered ids keep the
 * store's id index append-mostly (random v4 ids scatter writes across the whole index).
 */
let lastMs = -1;
let prefix = "";

/**
 * Random bytes from the CSPRNG, drawn 4 KiB at a time (one id takes 10 bytes): formatting ten
 * bytes through a table is cheaper than `randomUUID()` and cutting its string (~0.35 -> ~0.2 µs).
 */
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolAt = POOL_SIZE;
const HEX = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"));
const HIGH = HEX.map((hex) => hex[0]!);
const LOW = HEX.map((hex) => hex[1]!);
/** The RFC 9562 variant (binary 10xx) with two random bits. */
const VARIANT = ["8", "9", "a", "b"];

export function uuidv7(): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    const ms = now.toString(16).padStart(12, "0");
    prefix = `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7`;
  }
  if (poolAt > POOL_SIZE - 10) {
    randomFillSync(pool);
    poolAt = 0;
  }
  const b = pool;
  const i = poolAt;
  poolAt += 10;
  // rand_a (12 bits), then the variant and 62 bits of rand_b: 74 random bits, as before.
  return (
    prefix +
    HEX[b[i]!]! +
    HIGH[b[i + 1]!]! +
    "-" +
    VARIANT[b[i + 2]! & 3]! +
    LOW[b[i + 1]!]! +
    HEX[b[i + 3]!]! +
    "-" +
    HEX[b[i + 4]!]! +
    HEX[b[i + 5]!]! +
    HEX[b[i + 6]!]! +
    HEX[b[i + 7]!]! +
    HEX[b[i + 8]!]! +
    HEX[b[i + 9]!]!
  );
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
