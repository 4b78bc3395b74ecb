/**
 * The priority-ordered adapter registry. Lower ranks install first; see docs/architecture.md for
 * why each built-in has its rank.
 */
import type { FrameworkAdapter } from "./types.js";

/**
 * Fixed install ranks of the built-in adapters.
 * - langchain 0: the single choke point (`StructuredTool.prototype.call`) that LangGraph and
 *   `langchain` agents also run through, so it must be in place before anything layers on it.
 * - langgraph 1: adds graph context to calls the LangChain patch intercepts; needs it first.
 * - vercel-ai 2: independent of LangChain; early because its hooks wrap module exports at import.
 * - openai-agents 4: patches `Agent.prototype.getAllTools`, which may return MCP-derived tools.
 * - google-adk 5: its own tool runtime; nothing else depends on it.
 * - third-party 50: after every built-in, so they can rely on built-in context.
 * - mcp 99: the backstop. MCP tools are often wrapped by a higher framework, which then already
 *   governs the call; MCP client/server hooks catch whatever reaches MCP directly.
 */
export const BUILT_IN_RANKS: Readonly<Record<string, number>> = Object.freeze({
  langchain: 0,
  langgraph: 1,
  "vercel-ai": 2,
  "openai-agents": 4,
  "google-adk": 5,
  mcp: 99,
});

/** Default rank of an adapter that is not built in and declares no priority. */
export const THIRD_PARTY_RANK = 50;

/** The rank an adapter installs at: its fixed built-in rank, its own priority, or 50. */
export function rankOf(adapter: FrameworkAdapter): number {
  return BUILT_IN_RANKS[adapter.name] ?? adapter.priority ?? THIRD_PARTY_RANK;
}

/** Holds adapters by name and lists them in install order. */
export class AdapterRegistry {
  readonly #adapters = new Map<string, FrameworkAdapter>();

  /** Add an adapter; a second adapter with the same name is ignored (first wins) and reported. */
  register(adapter: FrameworkAdapter): boolean {
    if (this.#adapters.has(adapter.name)) return false;
    this.#adapters.set(adapter.name, adapter);
    return true;
  }

  get(name: string): FrameworkAdapter | undefined {
    return this.#adapters.get(name);
  }

  /** Adapters in install order: rank ascending, then name, so the order never depends on discovery order. */
  ordered(): FrameworkAdapter[] {
    return [...this.#adapters.values()].sort((a, b) => rankOf(a) - rankOf(b) || a.name.localeCompare(b.name));
  }

  get size(): number {
    return this.#adapters.size;
  }
}
