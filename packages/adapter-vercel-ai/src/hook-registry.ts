/**
 * What the import hook (`@aa/adapter-vercel-ai/register`) saw, shared with the adapter through a
 * process-global slot: the register entry and the adapter may be loaded as different module
 * instances (e.g. `--import` resolves one copy, discovery another).
 */

/** A module namespace as import-in-the-middle hands it over: assigning updates live bindings. */
export type HookedNamespace = Record<string, unknown>;

export interface ImportHookState {
  /** How the loader hook was installed. */
  readonly loader: "sync" | "async";
  /** Each copy of `ai` loaded through the hook, keyed by its package directory. */
  readonly namespaces: Map<string, HookedNamespace>;
  /**
   * Package directories of `ai` copies whose module was evaluated after the hook was registered.
   * A hooked namespace whose directory is missing here wraps a module the app had already imported
   * (and bound) before the hook: changing it would not reach the app.
   */
  readonly loadedAfterHook: Set<string>;
  /** False when this Node has no `module.registerHooks`: the load order cannot be checked. */
  readonly loadOrderChecked: boolean;
}

const SLOT = Symbol.for("agent-assembly.adapter-vercel-ai.import-hook");

type GlobalWithSlot = typeof globalThis & { [SLOT]?: ImportHookState };

/**
 * The namespaces that really reach the app: hooked, and (where the load order can be checked)
 * evaluated after the hook was registered.
 */
export function effectiveNamespaces(state: ImportHookState): HookedNamespace[] {
  return [...state.namespaces]
    .filter(([packageDir]) => !state.loadOrderChecked || state.loadedAfterHook.has(packageDir))
    .map(([, namespace]) => namespace);
}

/** The hook's state, or undefined when `@aa/adapter-vercel-ai/register` was never loaded. */
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
  const state: ImportHookState = {
    loader,
    namespaces: new Map(),
    loadedAfterHook: new Set(),
    loadOrderChecked,
  };
  Object.defineProperty(global, SLOT, { value: state, enumerable: false, configurable: true });
  return { state, created: true };
}
