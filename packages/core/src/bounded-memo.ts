/**
 * A Map bounded to a number of entries that forgets its oldest key first: the memo core and the
 * adapters keep per call (executed eventIds, held approvals, decided calls) so that a run that is
 * never resumed does not grow the process.
 *
 * Why not `map.keys().next()` to find the oldest key: V8 leaves a deleted entry's slot in place
 * until the table is rehashed, and iteration walks over every such slot; once a memo is full, each
 * eviction walked thousands of them (~8 µs per call at 10 000 entries). The oldest key comes from a
 * ring of the keys in insertion order instead, so each operation is O(1) (amortised with deletes).
 */
export class BoundedMemo<K, V> {
  readonly #limit: number;
  readonly #entries = new Map<K, V>();
  /**
   * Keys in insertion order, `#count` of them from `#head` on (circularly). A key deleted through
   * {@link delete} keeps its old position until the head reaches it (see `#stale`). Twice the limit
   * in size, so a compaction (O(limit)) happens at most once per `limit` deletions.
   */
  readonly #ring: (K | undefined)[] = [];
  readonly #capacity: number;
  #head = 0;
  #count = 0;
  /** Per key, how many of its earliest positions in the ring belong to an entry deleted since. */
  readonly #stale = new Map<K, number>();

  /** @param limit how many entries to keep (a positive integer). */
  constructor(limit: number) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`BoundedMemo limit must be a positive integer, got ${String(limit)}`);
    this.#limit = limit;
    this.#capacity = 2 * limit;
  }

  /** How many entries it holds (at most the limit). */
  get size(): number {
    return this.#entries.size;
  }

  /** The value held for `key`, or undefined; does not change the eviction order. */
  get(key: K): V | undefined {
    return this.#entries.get(key);
  }

  /** Whether `key` is held (not evicted nor deleted). */
  has(key: K): boolean {
    return this.#entries.has(key);
  }

  /**
   * Like `Map.prototype.set`: a key already held keeps its place in the eviction order and only
   * its value changes; a new key becomes the newest, evicting the oldest entry if the memo is full.
   * To make an existing key the newest, {@link delete} it first.
   */
  set(key: K, value: V): this {
    const entries = this.#entries;
    if (!entries.has(key)) {
      if (entries.size >= this.#limit) this.#evictOldest();
      this.#append(key);
    }
    entries.set(key, value);
    return this;
  }

  /** Forget `key`; true when it was held. */
  delete(key: K): boolean {
    if (!this.#entries.delete(key)) return false;
    // Its position stays in the ring; the head skips it (and only it: a later set of the same key
    // is appended after it) when it gets there.
    this.#stale.set(key, (this.#stale.get(key) ?? 0) + 1);
    return true;
  }

  /** Forget every key. */
  clear(): void {
    this.#entries.clear();
    this.#stale.clear();
    this.#ring.length = 0;
    this.#head = 0;
    this.#count = 0;
  }

  #evictOldest(): void {
    for (;;) {
      const key = this.#ring[this.#head] as K;
      this.#ring[this.#head] = undefined;
      this.#head = this.#head + 1 === this.#capacity ? 0 : this.#head + 1;
      this.#count--;
      const stale = this.#stale.size === 0 ? undefined : this.#stale.get(key);
      if (stale === undefined) {
        this.#entries.delete(key);
        return;
      }
      if (stale === 1) this.#stale.delete(key);
      else this.#stale.set(key, stale - 1);
    }
  }

  #append(key: K): void {
    if (this.#count === this.#capacity) this.#compact();
    const tail = this.#head + this.#count;
    this.#ring[tail >= this.#capacity ? tail - this.#capacity : tail] = key;
    this.#count++;
  }

  /** Keep only live keys' positions: the Map's own order is the same insertion order. */
  #compact(): void {
    const ring = this.#ring;
    let i = 0;
    for (const key of this.#entries.keys()) ring[i++] = key;
    ring.fill(undefined, i);
    this.#head = 0;
    this.#count = i;
    this.#stale.clear();
  }
}
