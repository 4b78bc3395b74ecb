/**
 * Chain verification over stored rows: each row's hash must be SHA-256 of its stored canonical text,
 * and the link that text commits to (`prev_hash`, `seq`) must point at the previous row. Rows are
 * fed in chunks so a million-record chain streams through in bounded memory.
 */
import { GENESIS_HASH, readLink, sha256Hex } from "./record.js";

export interface VerifiableRow {
  id: string;
  seq: number;
  hash: string;
  text: string;
}

export interface ChainBreak {
  rowId: string;
  seq: number;
  problem: string;
}

export class ChainVerifier {
  /** Hash the next row must link to; `undefined` means "accept the first row's link" (a range worker). */
  expectedPrev: string | undefined;
  expectedSeq: number | undefined;
  checked = 0;
  firstPrev: string | undefined;
  firstSeq: number | undefined;
  lastHash: string;
  lastSeq: number;
  broken: ChainBreak | undefined;
  /** Positions whose hashes to remember (checkpoint sizes), and what was seen there. */
  readonly #watched = new Map<number, string | undefined>();

  watch(seq: number): void {
    if (!this.#watched.has(seq)) this.#watched.set(seq, undefined);
  }

  hashAt(seq: number): string | undefined {
    return this.#watched.get(seq);
  }

  /** `prevHash` omitted: accept whatever the first row links to (a range checked by a worker). */
  constructor(start?: { prevHash?: string; seq: number }) {
    this.expectedPrev = start?.prevHash;
    this.expectedSeq = start?.seq;
    this.lastHash = start?.prevHash ?? GENESIS_HASH;
    this.lastSeq = start ? start.seq - 1 : 0;
  }

  /** Checks rows in order; returns false at the first break (and records it). */
  feed(rows: readonly VerifiableRow[]): boolean {
    if (this.broken) return false;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (!this.#accept(row.id, row.seq, row.hash, row.text)) return false;
    }
    return true;
  }

  /**
   * Same as `feed` for rows read as arrays `[seq, hash, text]` (no per-row objects, no id strings);
   * on a break, `broken.rowId` is empty and the caller resolves it from `broken.seq`.
   */
  feedArrays(rows: readonly (readonly unknown[])[]): boolean {
    if (this.broken) return false;
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      if (!this.#accept("", row[0] as number, row[1] as string, row[2] as string)) return false;
    }
    return true;
  }

  #accept(id: string, seq: number, hash: string, text: string): boolean {
    const problem = this.#check(seq, hash, text);
    if (problem) {
      this.broken = { rowId: id, seq, problem };
      return false;
    }
    this.checked++;
    if (this.#watched.size > 0 && this.#watched.has(seq)) this.#watched.set(seq, hash);
    this.lastHash = hash;
    this.lastSeq = seq;
    this.expectedPrev = hash;
    this.expectedSeq = seq + 1;
    return true;
  }

  #check(seq: number, hash: string, text: string): string | undefined {
    if (sha256Hex(text) !== hash) {
      return `record seq ${seq} does not match its stored hash: its content was edited`;
    }
    const link = readLink(text);
    if (!link) return `record seq ${seq} is not a well-formed audit record`;
    if (link.seq !== seq) {
      return `the record stored at position ${seq} was written at position ${link.seq}: records were reordered, inserted or deleted`;
    }
    if (this.firstPrev === undefined) {
      this.firstPrev = link.prevHash;
      this.firstSeq = link.seq;
    }
    if (this.expectedSeq !== undefined && seq !== this.expectedSeq) {
      return `record seq ${seq} follows seq ${this.expectedSeq - 1}: ${seq - this.expectedSeq} record(s) are missing`;
    }
    if (this.expectedPrev !== undefined && link.prevHash !== this.expectedPrev) {
      return `record seq ${seq} does not link to the record before it: a record was deleted, inserted or replaced before it`;
    }
    return undefined;
  }
}
