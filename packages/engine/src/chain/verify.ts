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
      const problem = this.#check(row);
      if (problem) {
        this.broken = { rowId: row.id, seq: row.seq, problem };
        return false;
      }
      this.checked++;
      if (this.#watched.size > 0 && this.#watched.has(row.seq)) this.#watched.set(row.seq, row.hash);
      this.lastHash = row.hash;
      this.lastSeq = row.seq;
      this.expectedPrev = row.hash;
      this.expectedSeq = row.seq + 1;
    }
    return true;
  }

  #check(row: VerifiableRow): string | undefined {
    if (sha256Hex(row.text) !== row.hash) {
      return `record seq ${row.seq} (id ${row.id}) does not match its stored hash: its content was edited`;
    }
    const link = readLink(row.text);
    if (!link) return `record seq ${row.seq} (id ${row.id}) is not a well-formed audit record`;
    if (link.seq !== row.seq) {
      return `record id ${row.id} is stored at position ${row.seq} but was written at position ${link.seq}: records were reordered, inserted or deleted`;
    }
    if (this.firstPrev === undefined) {
      this.firstPrev = link.prevHash;
      this.firstSeq = link.seq;
    }
    if (this.expectedSeq !== undefined && row.seq !== this.expectedSeq) {
      return `record seq ${row.seq} (id ${row.id}) follows seq ${this.expectedSeq - 1}: ${row.seq - this.expectedSeq} record(s) are missing`;
    }
    if (this.expectedPrev !== undefined && link.prevHash !== this.expectedPrev) {
      return `record seq ${row.seq} (id ${row.id}) does not link to the record before it: a record was deleted, inserted or replaced before it`;
    }
    return undefined;
  }
}
