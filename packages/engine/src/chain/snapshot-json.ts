/**
 * Canonical JSON for values the engine snapshotted with the native `JSON.stringify` (the memory
 * store's deferred records). The canonical text is a pure function of the snapshot text, and a
 * call's metadata (framework versions, run name, tags) or data-access list is usually the same
 * text from one record to the next: remembering the last snapshot skips the `JSON.parse` and the
 * canonical encoding when it repeats, for the cost of one string compare when it does not.
 */
import { canonicalJson } from "./canonical-json.js";
import { sha256Hex } from "./record.js";

/** One-entry memo of `canonicalJson(JSON.parse(snapshot))`. */
export class SnapshotCanonicalizer {
  #lastSnapshot: string | undefined;
  #lastCanonical = "";

  /** `canonicalJson(JSON.parse(snapshot))`, from memory when `snapshot` equals the previous one. */
  canonical(snapshot: string): string {
    if (snapshot !== this.#lastSnapshot) {
      // Computed before the memo changes: a snapshot that fails to encode is never remembered.
      const canonical = canonicalJson(JSON.parse(snapshot));
      this.#lastCanonical = canonical;
      this.#lastSnapshot = snapshot;
    }
    return this.#lastCanonical;
  }
}

/** One-entry memo of `"sha256:" + sha256Hex(json)` (a record's `args_hash`). */
export class ArgsHasher {
  #lastJson: string | undefined;
  #lastHash = "";

  /** `"sha256:" + sha256Hex(json)`, from memory when `json` equals the previous one. */
  hash(json: string): string {
    if (json !== this.#lastJson) {
      this.#lastHash = "sha256:" + sha256Hex(json);
      this.#lastJson = json;
    }
    return this.#lastHash;
  }
}
