/**
 * `node --import @aa/adapter-vercel-ai/register app.js`
 *
 * Registers hooks for the `ai` package only (no other module is wrapped): import-in-the-middle's
 * loader hook for `import`, require-in-the-middle for `require("ai")` (Node's require of the ESM
 * package), and records what the app will see, so that `initAssembly()` can later put governed
 * `generateText` / `streamText` into the app's bindings. It must run before the app loads `ai`:
 * an ESM namespace cannot be changed afterwards.
 */
import * as nodeModule from "node:module";
import { fileURLToPath } from "node:url";
import { addHook } from "import-in-the-middle";
import { register as registerSyncLoader, supportsSyncHooks } from "import-in-the-middle/register-hooks.mjs";
import { Hook as RequireHook } from "require-in-the-middle";
import {
  createImportHookState,
  type HookedNamespace,
  type ImportHookState,
  recordCopy,
} from "./hook-registry.js";
import { EXPORT_TARGETS } from "./patch-targets.js";

/** Only `ai` itself, by bare specifier or by its resolved entry file (what `import(url)` loads). */
const INCLUDE: Array<string | RegExp> = ["ai", /\/node_modules\/ai\/dist\/index\.m?js$/];

/** The entry file of an `ai` package, whichever specifier (bare or URL) loaded it. */
const AI_ENTRY = /^(.*[\\/]node_modules[\\/]ai)[\\/]dist[\\/]index\.m?js$/;

function installHooks(): void {
  const sync = supportsSyncHooks();
  const canCheckLoadOrder = typeof nodeModule.registerHooks === "function";
  const { state, created } = createImportHookState(sync ? "sync" : "async", canCheckLoadOrder);
  if (!created) return; // loaded twice (e.g. two copies of this package): one set of hooks is enough
  if (sync) registerSyncLoader({ include: INCLUDE });
  else nodeModule.register("import-in-the-middle/hook.mjs", import.meta.url, { data: { include: INCLUDE } });
  if (canCheckLoadOrder) {
    // Notes which `ai` copies are evaluated from now on (a pass-through for every other module):
    // a copy the app loaded before this point cannot be governed, and the adapter says so.
    nodeModule.registerHooks({
      load(url, context, nextLoad) {
        const result = nextLoad(url, context);
        // A substring test first: this runs for every module the app loads.
        if (url.includes("/node_modules/ai/dist/index.") && !url.includes("iitm=")) {
          const packageDir = aiPackageDir(url);
          if (packageDir !== undefined) state.loadedAfterHook.add(packageDir);
        }
        return result;
      },
    });
  }
  // The low-level hook sees the URL however `ai` was imported (`Hook(["ai"])` only matches the bare
  // specifier); other libraries' iitm hooks may wrap other modules: keep only `ai`'s entry file.
  addHook((url: string, exported: HookedNamespace) => {
    const packageDir = aiPackageDir(url);
    if (packageDir !== undefined) recordCopy(state, { via: "import", packageDir, namespace: exported });
  });
  const requireViews = new Map<string, object>();
  new RequireHook(["ai"], (exported, _name, basedir) => {
    if (basedir === undefined || typeof exported !== "object" || exported === null) return exported;
    let view = requireViews.get(basedir);
    if (!view) {
      view = requireView(state, exported as HookedNamespace, basedir);
      requireViews.set(basedir, view);
    }
    return view as typeof exported;
  });
}

/**
 * `require("ai")` returns the ESM namespace, which cannot be changed: the app gets a copy instead
 * whose governable functions delegate to slots the adapter can replace (and put back).
 */
function requireView(state: ImportHookState, namespace: HookedNamespace, packageDir: string): object {
  const slots: HookedNamespace = {};
  const view: Record<string, unknown> = {};
  for (const key of Object.keys(namespace)) view[key] = namespace[key];
  for (const { exportName } of EXPORT_TARGETS) {
    const original = namespace[exportName];
    if (typeof original !== "function") continue;
    slots[exportName] = original;
    const delegate = function (this: unknown, ...args: unknown[]) {
      return (slots[exportName] as (...a: unknown[]) => unknown).apply(this, args);
    };
    Object.defineProperty(delegate, "name", { value: original.name, configurable: true });
    Object.defineProperty(delegate, "length", { value: original.length, configurable: true });
    view[exportName] = delegate;
  }
  recordCopy(state, { via: "require", packageDir, namespace: slots });
  return Object.freeze(view);
}

function aiPackageDir(url: string): string | undefined {
  if (!url.startsWith("file:")) return undefined;
  const path = fileURLToPath(url.split(/[?#]/, 1)[0] as string);
  return AI_ENTRY.exec(path)?.[1];
}

installHooks();
