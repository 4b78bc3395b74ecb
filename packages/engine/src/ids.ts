import { randomUUID } from "node:crypto";

/**
 * A UUIDv7 (RFC 9562): 48-bit millisecond time, then random bits. Time-ordered ids keep the
 * store's id index append-mostly (random v4 ids scatter writes across the whole index).
 */
export function uuidv7(): string {
  const random = randomUUID();
  const ms = Date.now().toString(16).padStart(12, "0");
  return `${ms.slice(0, 8)}-${ms.slice(8, 12)}-7${random.slice(15)}`;
}
