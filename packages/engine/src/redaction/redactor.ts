/**
 * Redaction before anything is stored or logged. Rules from the policy file select values by
 * JSONPath-style paths and `mask`, `hash` or `drop` them, whatever their type; built-in detectors
 * mask secrets found in any string. The result is a JSON-serialisable value and the list of what
 * fired, for the audit record. The input is never mutated; when it is plain JSON data that nothing
 * changes, the result IS the input (no copy), so a caller that keeps it past the moment must
 * snapshot it (e.g. as canonical JSON) itself.
 *
 * Semantics:
 * - `mask` replaces the selected value (scalar, object or array, whole) with `"[REDACTED]"`.
 * - `hash` replaces it with `"hmac-sha256:v<version>:<hex>"`: HMAC-SHA256, keyed with the versioned
 *   secret, of the value's RFC 8785 canonical JSON, so equal values correlate without being revealed.
 * - `drop` removes an object member; an array element is replaced by `"[REDACTED]"` instead, so the
 *   indexes of the other elements (and paths such as `$.items[2]`) keep their meaning. Dropping the
 *   root yields `"[REDACTED]"`.
 * - When several rules select the same value the strongest applies (drop > mask > hash) and only
 *   that rule is reported; rules below a masked, hashed or dropped value do not run.
 * - Detectors run on strings (values and object keys) not selected by a rule. A member whose name
 *   says it is a secret (`password`, `api_key`, `authorization`, ...) and whose value is a string or
 *   number is masked whole (`detector:secret-field`).
 * - Cycles become `"[Circular]"`, values deeper than `maxDepth` become `"[Truncated]"`, a property
 *   whose getter throws becomes `"[Unreadable]"`; `__proto__` is an ordinary key in the output.
 */
import { createHmac } from "node:crypto";
import type { RedactMode, RedactRule } from "@aa/policy";
import { detectorMarker, isSecretFieldName, MIN_SECRET_LENGTH, redactSecretsInString } from "./detectors.js";
import { RedactionRuleError } from "./errors.js";
import {
  CIRCULAR,
  canonicalJson,
  type NodeView,
  REDACTED,
  safelyRead,
  safelyReadItem,
  setOwn,
  TRUNCATED,
  viewOf,
} from "./json-view.js";
import { type PathSelector, PathSyntaxError, parsePath } from "./path.js";

export { CIRCULAR, REDACTED, TRUNCATED, UNREADABLE } from "./json-view.js";

/** The redacted value and the ids of what fired: `"<path>:<mode>"` for rules, `"detector:<name>"`. */
export interface RedactionResult {
  value: unknown;
  fired: string[];
}

export interface RedactorOptions {
  /** Key for `hash` mode; use `HmacKeySet.activeKey()`. The version is written into every hash. */
  hmacKey: { version: number; secret: Uint8Array };
  /** Built-in secret detectors (default true). */
  detectors?: boolean;
  /** Nesting depth below which values become `"[Truncated]"` (default 64). */
  maxDepth?: number;
}

export type Redactor = (value: unknown) => RedactionResult;

const MODES: readonly RedactMode[] = ["mask", "hash", "drop"];
const MODE_STRENGTH: Record<RedactMode, number> = { hash: 1, mask: 2, drop: 3 };
const MIN_HMAC_SECRET_BYTES = 32;
const DROPPED = Symbol("dropped");
const NOTHING_FIRED: string[] = [];
const ignore = (): void => {};
const OMITTED = Symbol("omitted");

interface CompiledRule {
  id: string;
  mode: RedactMode;
  selectors: PathSelector[];
  descendant: boolean[];
}

/**
 * Compiles redaction rules into a redactor. Throws {@link RedactionRuleError} for an invalid path
 * (naming the path, the position and what is wrong), an unknown mode, or an unusable HMAC key.
 */
export function compileRedactor(rules: readonly RedactRule[], options: RedactorOptions): Redactor {
  if (!Array.isArray(rules))
    throw new RedactionRuleError("redaction rules must be an array of { path, mode }");
  const hmacKey = checkHmacKey(options?.hmacKey);
  const maxDepth = options.maxDepth ?? 64;
  if (!Number.isSafeInteger(maxDepth) || maxDepth < 1) {
    throw new RedactionRuleError(`maxDepth must be a positive integer, got ${String(options.maxDepth)}`);
  }
  const detectors = options.detectors !== false;
  const compiled = rules.map((rule, index) => compileRule(rule, index));
  // A state is (rule index, next step index), packed as rule * 256 + step (paths have <= 255 steps).
  const rootStates = compiled.map((_rule, index) => index * 256);

  /**
   * True when redaction would return an equal value: plain JSON data (plain objects and arrays,
   * strings, finite numbers, booleans, null) in which no rule completes and no detector fires.
   * Allocates nothing (unless rules have to be tracked), so the common call skips the copy.
   */
  const isClean = (node: unknown, states: number[], depth: number): boolean => {
    if (states.length > 0 && strongestCompleted(states, compiled)) return false;
    switch (typeof node) {
      case "string":
        return !detectors || node.length < MIN_SECRET_LENGTH || redactSecretsInString(node, ignore) === node;
      case "number":
        return Number.isFinite(node);
      case "boolean":
        return true;
      case "object":
        break;
      default:
        return false;
    }
    if (node === null) return true;
    if (depth >= maxDepth) return false;
    if (Array.isArray(node)) {
      for (let index = 0; index < node.length; index += 1) {
        const childStates = states.length === 0 ? states : advance(states, compiled, index, node.length);
        const child: unknown = node[index];
        if (child === undefined || !isClean(child, childStates, depth + 1)) return false;
      }
      return true;
    }
    const proto = Object.getPrototypeOf(node);
    if (
      (proto !== Object.prototype && proto !== null) ||
      typeof (node as { toJSON?: unknown }).toJSON === "function"
    ) {
      return false;
    }
    const record = node as Record<string, unknown>;
    for (const key in record) {
      if (!Object.hasOwn(record, key)) return false;
      if (key === "__proto__") return false;
      if (detectors && (isSecretFieldName(key) || redactSecretsInString(key, ignore) !== key)) return false;
      const childStates = states.length === 0 ? states : advance(states, compiled, key, -1);
      if (!isClean(record[key], childStates, depth + 1)) return false;
    }
    return true;
  };

  return (value: unknown): RedactionResult => {
    try {
      if (isClean(value, rootStates, 0)) return { value, fired: NOTHING_FIRED };
    } catch {
      // A throwing getter or proxy: the copying walk below turns it into a marker.
    }
    const fired: string[] = [];
    const seen = new Set<string>();
    const fire = (id: string) => {
      if (!seen.has(id)) {
        seen.add(id);
        fired.push(id);
      }
    };
    const fireDetector = (name: string) => fire(`detector:${name}`);
    const ancestors = new Set<object>();

    const applyRule = (node: unknown, rule: CompiledRule): unknown => {
      fire(rule.id);
      if (rule.mode === "drop") return DROPPED;
      if (rule.mode === "mask") return REDACTED;
      const digest = createHmac("sha256", hmacKey.secret).update(canonicalJson(node, maxDepth)).digest("hex");
      return `hmac-sha256:v${hmacKey.version}:${digest}`;
    };

    const redactString = (text: string): string =>
      detectors && text.length >= MIN_SECRET_LENGTH ? redactSecretsInString(text, fireDetector) : text;

    const visit = (node: unknown, states: number[], depth: number, secretField: boolean): unknown => {
      const matched = states.length === 0 ? undefined : strongestCompleted(states, compiled);
      if (matched) return applyRule(node, matched);
      if (typeof node === "string") {
        if (secretField && detectors) {
          fireDetector("secret-field");
          return detectorMarker("secret-field");
        }
        return redactString(node);
      }
      const view: NodeView = viewOf(node);
      if (view.kind === "omit") return OMITTED;
      if (view.kind === "scalar") {
        const scalar = view.value;
        if (secretField && detectors && (typeof scalar === "string" || typeof scalar === "number")) {
          fireDetector("secret-field");
          return detectorMarker("secret-field");
        }
        return typeof scalar === "string" ? redactString(scalar) : scalar;
      }
      const object = node as object;
      if (ancestors.has(object)) return CIRCULAR;
      if (depth >= maxDepth) return TRUNCATED;
      ancestors.add(object);
      try {
        if (view.kind === "array") {
          const out: unknown[] = new Array(view.length);
          for (let index = 0; index < view.length; index += 1) {
            const childStates = states.length === 0 ? states : advance(states, compiled, index, view.length);
            const child = visit(safelyReadItem(view.items, index), childStates, depth + 1, false);
            out[index] = child === DROPPED ? REDACTED : child === OMITTED ? null : child;
          }
          return out;
        }
        const out: Record<string, unknown> = {};
        for (const key of view.keys) {
          const childStates = states.length === 0 ? states : advance(states, compiled, key, -1);
          const secret = detectors && isSecretFieldName(key);
          const child = visit(safelyRead(view, key), childStates, depth + 1, secret);
          if (child === DROPPED || child === OMITTED) continue;
          let outKey = detectors ? redactString(key) : key;
          if (outKey !== key) {
            // A masked key may collide with another masked key; keep both members.
            let suffix = 2;
            const base = outKey;
            while (Object.hasOwn(out, outKey)) outKey = `${base}#${suffix++}`;
          }
          setOwn(out, outKey, child);
        }
        return out;
      } finally {
        ancestors.delete(object);
      }
    };

    const result = visit(value, rootStates, 0, false);
    const redacted = result === DROPPED ? REDACTED : result === OMITTED ? undefined : result;
    return { value: redacted, fired };
  };
}

function checkHmacKey(key: RedactorOptions["hmacKey"] | undefined): { version: number; secret: Uint8Array } {
  if (typeof key !== "object" || key === null) {
    throw new RedactionRuleError(
      "options.hmacKey is required: { version, secret } (see HmacKeySet.activeKey())",
    );
  }
  if (!Number.isSafeInteger(key.version) || key.version < 1) {
    throw new RedactionRuleError("options.hmacKey.version must be a positive integer");
  }
  if (!(key.secret instanceof Uint8Array) || key.secret.byteLength < MIN_HMAC_SECRET_BYTES) {
    throw new RedactionRuleError(
      `options.hmacKey.secret must be a Uint8Array of at least ${MIN_HMAC_SECRET_BYTES} bytes`,
    );
  }
  return { version: key.version, secret: new Uint8Array(key.secret) };
}

function compileRule(rule: RedactRule, index: number): CompiledRule {
  const where = `redact[${index}]`;
  if (typeof rule !== "object" || rule === null) {
    throw new RedactionRuleError(`${where} must be an object { path, mode }`, index);
  }
  if (!MODES.includes(rule.mode)) {
    throw new RedactionRuleError(
      `${where} has mode ${JSON.stringify(rule.mode)}; expected one of ${MODES.join(", ")}`,
      index,
      rule.path,
    );
  }
  try {
    const steps = parsePath(rule.path);
    return {
      id: `${rule.path}:${rule.mode}`,
      mode: rule.mode,
      selectors: steps.map((step) => step.selector),
      descendant: steps.map((step) => step.descendant),
    };
  } catch (error) {
    if (error instanceof PathSyntaxError) {
      throw new RedactionRuleError(
        `${where} has an invalid path ${JSON.stringify(rule.path)}: ${error.message}`,
        index,
        rule.path,
      );
    }
    throw error;
  }
}

/** The strongest rule whose path ends at this node, if any. */
function strongestCompleted(states: number[], rules: CompiledRule[]): CompiledRule | undefined {
  let best: CompiledRule | undefined;
  for (const state of states) {
    const rule = rules[state >> 8]!;
    if (
      (state & 255) === rule.selectors.length &&
      (!best || MODE_STRENGTH[rule.mode] > MODE_STRENGTH[best.mode])
    ) {
      best = rule;
    }
  }
  return best;
}

/** The states after stepping into the child `key` (an array index when `length >= 0`). */
function advance(states: number[], rules: CompiledRule[], key: string | number, length: number): number[] {
  const next: number[] = [];
  for (const state of states) {
    const rule = rules[state >> 8]!;
    const step = state & 255;
    if (step === rule.selectors.length) continue;
    if (rule.descendant[step] && !next.includes(state)) next.push(state);
    if (selects(rule.selectors[step]!, key, length) && !next.includes(state + 1)) next.push(state + 1);
  }
  return next;
}

function selects(selector: PathSelector, key: string | number, length: number): boolean {
  switch (selector.kind) {
    case "wildcard":
      return true;
    case "name":
      return typeof key === "string" && selector.name === key;
    case "index":
      return typeof key === "number" && (selector.index === key || selector.index + length === key);
  }
}
