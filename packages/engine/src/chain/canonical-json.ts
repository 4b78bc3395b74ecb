/**
 * RFC 8785 (JCS) canonical JSON, tuned for the decide path: strings and numbers go through the
 * engine's native `JSON.stringify` (whose ES number and string serialisation is exactly what JCS
 * specifies), object keys are sorted by UTF-16 code units. Property tests pin it to the reference
 * `canonicalize` package.
 */
export function canonicalJson(value: unknown): string {
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "number":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "object":
      return value === null ? "null" : canonicalObject(value);
    default:
      return "null";
  }
}

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
  const keys = Object.keys(value).sort();
  let out = "{";
  let first = true;
  for (const key of keys) {
    const member = (value as Record<string, unknown>)[key];
    if (member === undefined || typeof member === "function" || typeof member === "symbol") continue;
    out += (first ? "" : ",") + JSON.stringify(key) + ":" + canonicalJson(member);
    first = false;
  }
  return out + "}";
}
