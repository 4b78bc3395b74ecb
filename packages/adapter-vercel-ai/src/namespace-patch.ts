/**
 * Wrapping an export on a module namespace hooked by import-in-the-middle. Such a namespace only
 * updates the module's live bindings through plain assignment (its properties are setters), so
 * core's `wrapMethod`, which redefines the property, cannot be used here; the rules are the same:
 * a private mark, one wrapper per owner, and the original put back only while the slot still holds
 * our wrapper (otherwise ours stays as an inactive pass-through). `unhook()` would not restore the
 * binding: the original is assigned back by `unwrap()`.
 */
import type { HookedNamespace } from "./hook-registry.js";

// biome-ignore lint/suspicious/noExplicitAny: an export can have any signature
type AnyFunction = (this: any, ...args: any[]) => any;

const MARK = Symbol("agent-assembly.vercel-ai.export-wrapper");

interface ExportWrapperState {
  readonly owner: string;
  readonly original: AnyFunction;
  active: boolean;
  handle?: ExportHandle;
}

type Marked = AnyFunction & { [MARK]?: ExportWrapperState };

/** A handle on one wrapped export. */
export interface ExportHandle {
  readonly original: AnyFunction;
  readonly wrapper: AnyFunction;
  /** Deactivate; assign the original back if the slot still holds our wrapper (true then). */
  unwrap(): boolean;
}

/**
 * Replace `namespace[key]` with `makeWrapper(original)` by assignment.
 * @throws TypeError when the export is not a function or the namespace does not take the new value.
 */
export function wrapExport(
  namespace: HookedNamespace,
  key: string,
  owner: string,
  makeWrapper: (original: AnyFunction) => AnyFunction,
): ExportHandle {
  const current = namespace[key];
  if (typeof current !== "function") {
    throw new TypeError(`cannot wrap export ${key}: it is ${typeof current}, not a function`);
  }
  const existing = (current as Marked)[MARK];
  if (existing?.active && existing.owner === owner && existing.handle) return existing.handle;
  const original = current as AnyFunction;
  const inner = makeWrapper(original);
  const state: ExportWrapperState = { owner, original, active: true };
  const wrapper = function (this: unknown, ...args: unknown[]) {
    return state.active ? inner.apply(this, args) : original.apply(this, args);
  } as Marked;
  Object.defineProperty(wrapper, "name", { value: original.name, configurable: true });
  Object.defineProperty(wrapper, "length", { value: original.length, configurable: true });
  Object.defineProperty(wrapper, MARK, { value: state, enumerable: false });
  namespace[key] = wrapper;
  if (namespace[key] !== wrapper) {
    throw new TypeError(`the namespace did not accept a new value for export ${key}`);
  }
  const handle: ExportHandle = {
    original,
    wrapper,
    unwrap() {
      state.active = false;
      if (namespace[key] !== wrapper) return false;
      namespace[key] = original;
      return true;
    },
  };
  state.handle = handle;
  return handle;
}
