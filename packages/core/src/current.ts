/**
 * `getAssembly()`: the process's governed context, however it was created (`--import
 * @aa/core/register` or `initAssembly()` in code), so app code can reach `gate()`, `execute()`...
 */
import { AssemblyError } from "./errors.js";
import type { AssemblyContext } from "./init.js";

// The key initAssembly stores its per-process state under (shared by every copy of @aa/core).
const STATE_KEY = Symbol.for("agent-assembly.context");

/**
 * The context of this process. Waits for an `initAssembly()` still in progress. Rejects with
 * `AssemblyError` code `NOT_INITIALISED` when Agent Assembly is not running in this process.
 *
 * @example
 * // node --import @aa/core/register app.mjs
 * const assembly = await getAssembly();
 * await assembly.execute("pr.open", { args: { size: 3 } });
 */
export async function getAssembly(): Promise<AssemblyContext> {
  const state = (globalThis as { [STATE_KEY]?: { context: Promise<AssemblyContext> } })[STATE_KEY];
  if (!state) {
    throw new AssemblyError(
      "NOT_INITIALISED",
      "Agent Assembly is not initialised in this process: start node with --import @aa/core/register, or call initAssembly() first",
    );
  }
  return state.context;
}
