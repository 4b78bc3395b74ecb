/**
 * The one wrap/unwrap helper adapters use to patch a framework method.
 *
 * - Our wrappers are marked with a module-private Symbol and an owner, never a shared string.
 * - Wrapping twice for the same owner returns the existing handle (no double wrap).
 * - Unwrapping restores the original only while the slot still holds our wrapper; if another
 *   library wrapped on top of us, our wrapper stays in its stack as an inactive pass-through.
 * - The wrapper keeps the original's `name` and `length`.
 */

// biome-ignore lint/suspicious/noExplicitAny: a method can have any signature
type AnyFunction = (this: any, ...args: any[]) => any;

const MARK = Symbol("agent-assembly.wrapper");

interface WrapperState {
  readonly owner: string;
  readonly original: AnyFunction;
  active: boolean;
}

type Marked = AnyFunction & { [MARK]?: WrapperState };

const handles = new WeakMap<Marked, WrapHandle>();

/** A handle on one installed wrapper. */
export interface WrapHandle<F extends AnyFunction = AnyFunction> {
  readonly owner: string;
  /** The method that was in the slot before we wrapped it. */
  readonly original: F;
  /** Our wrapper (what the slot holds while nobody wrapped on top). */
  readonly wrapper: F;
  /** False after `unwrap()`: the wrapper then only passes calls through. */
  readonly active: boolean;
  /**
   * Deactivate the wrapper and put the original back if the slot still holds our wrapper.
   * Returns true when the original was restored, false when our wrapper was left in place
   * as a pass-through because something else wrapped on top of it.
   */
  unwrap(): boolean;
}

/** Is `fn` a wrapper made by `wrapMethod` (for `owner`, when given)? */
export function isWrapped(fn: unknown, owner?: string): boolean {
  if (typeof fn !== "function") return false;
  const state = (fn as Marked)[MARK];
  return state?.active === true && (owner === undefined || state.owner === owner);
}

/** The original behind our wrapper (or `fn` itself when it is not ours). */
export function unwrapped<F>(fn: F): F {
  const state = typeof fn === "function" ? (fn as Marked)[MARK] : undefined;
  return (state ? state.original : fn) as F;
}

/**
 * Replace `target[key]` (a method) with `makeWrapper(original)`.
 *
 * @param owner who installs the wrapper (usually the adapter name); scopes the double-wrap guard.
 * @throws TypeError when `target[key]` is not a function or the slot cannot be written.
 */
export function wrapMethod<T extends object, K extends keyof T & (string | symbol)>(
  target: T,
  key: K,
  owner: string,
  makeWrapper: (original: T[K] & AnyFunction) => T[K] & AnyFunction,
): WrapHandle<T[K] & AnyFunction> {
  const current = target[key] as unknown;
  if (typeof current !== "function") {
    throw new TypeError(`cannot wrap ${String(key)}: it is ${typeof current}, not a function`);
  }
  const existing = (current as Marked)[MARK];
  if (existing?.active && existing.owner === owner) {
    const handle = handles.get(current as Marked);
    if (handle) return handle as WrapHandle<T[K] & AnyFunction>;
  }
  const original = current as T[K] & AnyFunction;
  const hadOwn = Object.hasOwn(target, key);
  const descriptor = Object.getOwnPropertyDescriptor(target, key);
  const inner = makeWrapper(original);
  const state: WrapperState = { owner, original, active: true };
  const wrapper = function (this: unknown, ...args: unknown[]) {
    return state.active ? inner.apply(this, args) : original.apply(this, args);
  } as Marked;
  Object.defineProperty(wrapper, "name", { value: original.name, configurable: true });
  Object.defineProperty(wrapper, "length", { value: original.length, configurable: true });
  Object.defineProperty(wrapper, MARK, { value: state, enumerable: false });

  Object.defineProperty(target, key, {
    value: wrapper,
    writable: descriptor?.writable ?? true,
    enumerable: descriptor?.enumerable ?? false,
    configurable: true,
  });
  const handle = handleFor<T[K] & AnyFunction>(target, key, wrapper, state, hadOwn ? descriptor : undefined);
  handles.set(wrapper, handle);
  return handle;
}

function handleFor<F extends AnyFunction>(
  target: object,
  key: string | symbol,
  wrapper: Marked,
  state: WrapperState,
  originalDescriptor?: PropertyDescriptor,
): WrapHandle<F> {
  return {
    owner: state.owner,
    original: state.original as F,
    wrapper: wrapper as F,
    get active() {
      return state.active;
    },
    unwrap() {
      state.active = false;
      if ((target as Record<string | symbol, unknown>)[key] !== wrapper) return false;
      if (originalDescriptor) Object.defineProperty(target, key, originalDescriptor);
      else if (Object.hasOwn(target, key)) {
        delete (target as Record<string | symbol, unknown>)[key];
        if ((target as Record<string | symbol, unknown>)[key] !== state.original) {
          Object.defineProperty(target, key, {
            value: state.original,
            writable: true,
            configurable: true,
            enumerable: false,
          });
        }
      }
      return true;
    },
  };
}
