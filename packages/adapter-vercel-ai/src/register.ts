/**
 * `node --import @aa/adapter-vercel-ai/register app.js`
 *
 * Registers import-in-the-middle's loader hook for the `ai` package only (no other module is
 * touched) and records each hooked `ai` namespace, so that `initAssembly()` can later put governed
 * `generateText` / `streamText` into the app's live bindings. It must run before the app imports
 * `ai`: an ESM namespace cannot be changed afterwards.
 */
import * as nodeModule from "node:module";
import { fileURLToPath } from "node:url";
import { addHook } from "import-in-the-middle";
import { register as registerSyncLoader, supportsSyncHooks } from "import-in-the-middle/register-hooks.mjs";
import { createImportHookState, type HookedNamespace } from "./hook-registry.js";

/** Only `ai` itself, by bare specifier or by its resolved entry file (what `import(url)` loads). */
const INCLUDE: Array<string | RegExp> = ["ai", /\/node_modules\/ai\/dist\/index\.js$/];

/** The entry file of an `ai` package, whichever specifier (bare or URL) loaded it. */
const AI_ENTRY = /^(.*[\\/]node_modules[\\/]ai)[\\/]dist[\\/]index\.js$/;

function installImportHook(): void {
  const sync = supportsSyncHooks();
  const canCheckLoadOrder = typeof nodeModule.registerHooks === "function";
  const { state, created } = createImportHookState(sync ? "sync" : "async", canCheckLoadOrder);
  if (!created) return; // loaded twice (e.g. two copies of this package): one hook is enough
  if (sync) registerSyncLoader({ include: INCLUDE });
  else nodeModule.register("import-in-the-middle/hook.mjs", import.meta.url, { data: { include: INCLUDE } });
  if (canCheckLoadOrder) {
    // Notes which `ai` copies are evaluated from now on (a pass-through for every other module):
    // a copy the app imported before this point cannot be governed, and the adapter says so.
    nodeModule.registerHooks({
      load(url, context, nextLoad) {
        const result = nextLoad(url, context);
        if (!url.includes("iitm=")) {
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
    if (packageDir !== undefined) state.namespaces.set(packageDir, exported);
  });
}

installImportHook();

function aiPackageDir(url: string): string | undefined {
  if (!url.startsWith("file:")) return undefined;
  const path = fileURLToPath(url.split(/[?#]/, 1)[0] as string);
  return AI_ENTRY.exec(path)?.[1];
}
