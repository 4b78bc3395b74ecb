/**
 * The operator kill switch, as this process sees it: the set of contained agents, refreshed from
 * the store on a timer (off the decision path) so that a containment written by another process
 * (the `aa` CLI) is enforced here within one refresh interval. The decision path only reads the
 * in-memory set.
 */
import type { AgentControlRow, AuditStore } from "../store/types.js";

export class ContainmentView {
  readonly #store: AuditStore;
  readonly #org: string;
  #contained = new Map<string, AgentControlRow>();
  #timer: NodeJS.Timeout | undefined;
  #refreshing: Promise<void> | undefined;
  /** Bumped by every local transition, so a read that started before one cannot undo it. */
  #localWrites = 0;

  constructor(store: AuditStore, org: string) {
    this.#store = store;
    this.#org = org;
  }

  /** Loads the current state, then (for stores other processes share) re-reads it every `intervalMs`. */
  async start(intervalMs: number): Promise<void> {
    await this.refresh();
    if (this.#store.kind === "memory") return;
    this.#timer = setInterval(() => void this.safelyRefresh(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Re-reads the store now. */
  async refresh(): Promise<void> {
    this.#refreshing ??= (async () => {
      try {
        const writesBefore = this.#localWrites;
        const rows = await this.#store.listAgentControls(this.#org);
        if (writesBefore !== this.#localWrites) return; // stale: the next read sees our write
        const next = new Map<string, AgentControlRow>();
        for (const row of rows) if (row.contained) next.set(row.agentId, row);
        this.#contained = next;
      } finally {
        this.#refreshing = undefined;
      }
    })();
    return this.#refreshing;
  }

  /** A failed periodic read keeps the last known state; the next tick retries. */
  async safelyRefresh(): Promise<void> {
    try {
      await this.refresh();
    } catch {
      // The store is unreachable: decisions fail on their own append; keep what we know.
    }
  }

  /** Applies a transition this process wrote, without waiting for the next refresh. */
  apply(row: AgentControlRow): void {
    this.#localWrites++;
    if (row.contained) this.#contained.set(row.agentId, row);
    else this.#contained.delete(row.agentId);
  }

  /** The containment that blocks a call by `agentId` acting through `delegation`, if any. */
  blocking(agentId: string, delegation: readonly string[] | undefined): AgentControlRow | undefined {
    if (this.#contained.size === 0) return undefined;
    const own = this.#contained.get(agentId);
    if (own || delegation === undefined) return own;
    for (const id of delegation) {
      const row = this.#contained.get(id);
      if (row) return row;
    }
    return undefined;
  }

  get(agentId: string): AgentControlRow | undefined {
    return this.#contained.get(agentId);
  }
}
