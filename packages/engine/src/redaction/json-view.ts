/**
 * How an arbitrary JavaScript value is seen as JSON, shared by the redactor's walk and the canonical
 * serialisation behind `hash`. It follows JSON.stringify (toJSON, own enumerable keys, undefined and
 * functions omitted) except where that would leak or throw: binary data becomes a size marker,
 * bigint a decimal string, Map an object and Set an array, Error its name and message, and anything
 * that throws while being read becomes `[Unreadable]`.
 */

export const REDACTED = "[REDACTED]";
export const CIRCULAR = "[Circular]";
export const TRUNCATED = "[Truncated]";
export const UNREADABLE = "[Unreadable]";

export type JsonScalar = string | number | boolean | null;

export type NodeView =
  | { kind: "scalar"; value: JsonScalar }
  | { kind: "omit" }
  | { kind: "array"; items: ArrayLike<unknown>; length: number }
  | { kind: "object"; keys: string[]; read: (key: string) => unknown };

const OMIT: NodeView = { kind: "omit" };

/** The JSON view of `value`. Never throws. `afterToJSON` stops a second toJSON call, as JSON does. */
export function viewOf(value: unknown, afterToJSON = false): NodeView {
  switch (typeof value) {
    case "string":
    case "boolean":
      return { kind: "scalar", value };
    case "number":
      return { kind: "scalar", value: Number.isFinite(value) ? value : null };
    case "bigint":
      return { kind: "scalar", value: value.toString() };
    case "undefined":
    case "function":
    case "symbol":
      return OMIT;
  }
  if (value === null) return { kind: "scalar", value: null };
  try {
    return viewOfObject(value as object, afterToJSON);
  } catch {
    return { kind: "scalar", value: UNREADABLE };
  }
}

function viewOfObject(value: object, afterToJSON: boolean): NodeView {
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) {
    return { kind: "scalar", value: `[Binary ${(value as ArrayBuffer).byteLength} bytes]` };
  }
  if (Array.isArray(value)) return { kind: "array", items: value, length: value.length };
  if (!afterToJSON && typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return viewOf((value as { toJSON: (key: string) => unknown }).toJSON(""), true);
  }
  if (value instanceof Map) {
    const entries = new Map<string, unknown>();
    for (const [key, entry] of value) entries.set(String(key), entry);
    return { kind: "object", keys: [...entries.keys()], read: (key) => entries.get(key) };
  }
  if (value instanceof Set) {
    const items = [...value];
    return { kind: "array", items, length: items.length };
  }
  if (value instanceof Error) {
    const fields: Record<string, unknown> = Object.create(null);
    fields.name = value.name;
    fields.message = value.message;
    for (const key of Object.keys(value)) fields[key] = (value as unknown as Record<string, unknown>)[key];
    return { kind: "object", keys: Object.keys(fields), read: (key) => fields[key] };
  }
  const record = value as Record<string, unknown>;
  return { kind: "object", keys: Object.keys(record), read: (key) => record[key] };
}

/** Reads one property; a throwing getter or proxy trap yields `[Unreadable]`. */
export function safelyRead(view: Extract<NodeView, { kind: "object" }>, key: string): unknown {
  try {
    return view.read(key);
  } catch {
    return UNREADABLE;
  }
}

export function safelyReadItem(items: ArrayLike<unknown>, index: number): unknown {
  try {
    return items[index];
  } catch {
    return UNREADABLE;
  }
}

/** Sets `key` on a plain object as data, including `__proto__`, so output never changes a prototype. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/**
 * RFC 8785 canonical JSON of the JSON view of `value` (keys sorted by UTF-16 code units, ECMAScript
 * number and string serialisation). Cycles and the depth cap serialise as their markers, so it never
 * throws. An omitted root (undefined, a function) serialises as `null`.
 */
export function canonicalJson(value: unknown, maxDepth: number): string {
  return serialise(value, 0, maxDepth, new Set()) ?? "null";
}

function serialise(
  value: unknown,
  depth: number,
  maxDepth: number,
  ancestors: Set<object>,
): string | undefined {
  if (typeof value === "string") return JSON.stringify(value);
  const view = viewOf(value);
  switch (view.kind) {
    case "scalar":
      return JSON.stringify(view.value);
    case "omit":
      return undefined;
  }
  if (ancestors.has(value as object)) return JSON.stringify(CIRCULAR);
  if (depth >= maxDepth) return JSON.stringify(TRUNCATED);
  ancestors.add(value as object);
  let out: string;
  if (view.kind === "array") {
    const parts: string[] = [];
    for (let index = 0; index < view.length; index += 1) {
      parts.push(serialise(safelyReadItem(view.items, index), depth + 1, maxDepth, ancestors) ?? "null");
    }
    out = `[${parts.join(",")}]`;
  } else {
    const parts: string[] = [];
    for (const key of [...view.keys].sort()) {
      const member = serialise(safelyRead(view, key), depth + 1, maxDepth, ancestors);
      if (member !== undefined) parts.push(`${JSON.stringify(key)}:${member}`);
    }
    out = `{${parts.join(",")}}`;
  }
  ancestors.delete(value as object);
  return out;
}
