/**
 * What the hooks of `@aa/adapter-vercel-ai/register` saw, shared with the adapter through a
 * process-global slot: the register entry and the adapter may be loaded as different module
 * instances (e.g. `--import` resolves one copy, discovery another).
 */

/**
 * Where the app's bindings to `ai` exports live: an import-in-the-middle namespace (assigning
 * updates the live bindings of every importer) or the object `require("ai")` returns under the
 * require hook (its governed functions delegate to these slots).
 */
export type HookedNamespace = Record<string, unknown>;

/** How the app reaches a hooked copy of `ai`. */
export type HookedVia = "import" | "require";

export interface HookedCopy {
  readonly via: HookedVia;
  /** The `ai` package directory. */
  readonly packageDir: string;
  readonly namespace: HookedNamespace;
}

export interface ImportHookState {
  /** How the ESM loader hook was installed. */
  readonly loader: "sync" | "async";
  /** Each copy of `ai` the app can reach, keyed by `<via> <package directory>`. */
  readonly copies: Map<string, HookedCopy>;
  /**
   * Package directories of `ai` copies whose module was evaluated after the hooks were registered.
   * A copy missing here was imported (and bound) by the app before the hooks: changing its
   * namespace would not reach the app.
   */
  readonly loadedAfterHook: Set<string>;
  /** False when this Node has no `module.registerHooks`: the load order cannot be checked. */
  readonly loadOrderChecked: boolean;
}

const SLOT = Symbol.for("agent-assembly.adapter-vercel-ai.import-hook");

type GlobalWithSlot = typeof globalThis & { [SLOT]?: ImportHookState };

/** Record a copy of `ai` reached through a hook. */
export function recordCopy(state: ImportHookState, copy: HookedCopy): void {
  state.copies.set(`${copy.via} ${copy.packageDir}`, copy);
}

/**
 * The copies whose changes really reach the app: hooked, and (where the load order can be
 * checked) evaluated after the hooks were registered.
 */
export function effectiveCopies(state: ImportHookState): HookedCopy[] {
  return [...state.copies.values()].filter(
    (copy) => !state.loadOrderChecked || state.loadedAfterHook.has(copy.packageDir),
  );
}

/** The hooks' state, or undefined when `@aa/adapter-vercel-ai/register` was never loaded. */
export function importHookState(): ImportHookState | undefined {
  return (globalThis as GlobalWithSlot)[SLOT];
}

/** Create the state once per process (the register entry calls this). */
export function createImportHookState(
  loader: "sync" | "async",
  loadOrderChecked: boolean,
): { state: ImportHookState; created: boolean } {
  const global = globalThis as GlobalWithSlot;
  const existing = global[SLOT];
  if (existing) return { state: existing, created: false };
  const state: ImportHookState = { loader, copies: new Map(), loadedAfterHook: new Set(), loadOrderChecked };
  Object.defineProperty(global, SLOT, { value: state, enumerable: false, configurable: true });
  return { state, created: true };
}
