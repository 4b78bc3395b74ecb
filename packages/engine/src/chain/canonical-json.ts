/**
 * RFC 8785 (JCS) canonical JSON, tuned for the decide path: strings and numbers serialise exactly
 * as the engine's native `JSON.stringify` would (ES number and string serialisation is what JCS
 * specifies), object keys are sorted by UTF-16 code units. Property tests pin it to the reference
 * `canonicalize` package.
 */

/**
 * Printable ASCII without `"` and `\`: a string made only of these needs no escaping, so its JSON
 * form is the string in quotes. A regular-expression test is several times cheaper than
 * `JSON.stringify` for the short strings records are made of (names, ids, enum words).
 */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** Longer strings go straight to `JSON.stringify`, whose native scan wins there. */
const PLAIN_TEST_MAX = 128;

/** The JSON (and JCS) text of a string; identical to `JSON.stringify(value)`. */
export function quoteJson(value: string): string {
  return value.length <= PLAIN_TEST_MAX && PLAIN.test(value) ? `"${value}"` : JSON.stringify(value);
}

/** The JSON (and JCS) text of a number; identical to `JSON.stringify(value)`. */
export function numberJson(value: number): string {
  // Number#toString is the ES serialisation JSON.stringify uses; non-finite numbers become null.
  return Number.isFinite(value) ? String(value) : "null";
}

/**
 * Object keys repeat from call to call (the same tool's argument names); their JSON text is kept
 * in a bounded cache (keys are usually internalised strings with a cached hash, so a lookup is
 * cheaper than the escaping scan). Cleared when full, so odd inputs cannot grow it.
 */
const keyJson = new Map<string, string>();
const KEY_CACHE_MAX = 2048;

function quoteKey(key: string): string {
  let text = keyJson.get(key);
  if (text === undefined) {
    text = quoteJson(key);
    if (key.length <= 64) {
      if (keyJson.size >= KEY_CACHE_MAX) keyJson.clear();
      keyJson.set(key, text);
    }
  }
  return text;
}

export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return quoteJson(value);
    case "number":
      return numberJson(value);
    case "boolean":
      return value ? "true" : "false";
    case "object":
      return value === null ? "null" : canonicalObject(value);
    default:
      return "null";
  }
}

/** Up to this many keys, an insertion sort beats `Array#sort` (and its comparator calls). */
const SMALL_OBJECT = 12;

function canonicalObject(value: object): string {
  if (typeof (value as { toJSON?: unknown }).toJSON === "function") {
    return canonicalJson((value as { toJSON: () => unknown }).toJSON());
  }
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    let out = "[";
    for (let i = 0; i < value.length; i++) out += (i === 0 ? "" : ",") + canonicalJson(value[i]);
    return out + "]";
  }
  const keys = Object.keys(value);
  if (keys.length > SMALL_OBJECT) keys.sort();
  else {
    // `<` on strings compares UTF-16 code units, the order RFC 8785 requires (as does sort()).
    for (let i = 1; i < keys.length; i++) {
      const key = keys[i]!;
      let j = i - 1;
      while (j >= 0 && keys[j]! > key) {
        keys[j + 1] = keys[j]!;
        j--;
      }
      keys[j + 1] = key;
    }
  }
  let out = "{";
  let first = true;
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]!;
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
    out += (first ? "" : ",") + quoteKey(key) + ":" + canonicalJson(member);
    first = false;
  }
  return out + "}";
}
