import type { EvaluationInput } from "./types.js";

/** Roots a condition's `field` may start with, and the evaluation-input property each one reads. */
export const FIELD_ROOTS = {
  args: "args",
  metadata: "metadata",
  agent: "agent",
  tool: "tool",
  data_accessed: "dataAccessed",
  user: "user",
} as const satisfies Record<string, keyof EvaluationInput>;

export type FieldRoot = keyof typeof FIELD_ROOTS;

/** Marks a value that is not there (distinct from `undefined` stored in a property, which also counts as missing). */
export const MISSING: unique symbol = Symbol("missing");
export type Lookup = (input: EvaluationInput) => unknown;

const SEGMENT = /^[^.\s]+$/;
const ARRAY_INDEX = /^(?:0|[1-9]\d{0,8})$/;

/** Returns why `field` is not a valid condition field, or undefined when it is. */
export function describeInvalidField(field: string): string | undefined {
  const segments = field.split(".");
  const root = segments[0] as string;
  if (!Object.hasOwn(FIELD_ROOTS, root)) {
    return `unknown field root ${JSON.stringify(root)}: a field starts with ${Object.keys(FIELD_ROOTS).join(", ")}`;
  }
  for (const segment of segments.slice(1)) {
    if (!SEGMENT.test(segment)) return `field ${JSON.stringify(field)} has an empty or blank segment`;
  }
  return undefined;
}

/**
 * Compiles a dotted field path to a lookup. Only own properties are read (the prototype chain is never
 * walked, so `__proto__` and `constructor` are ordinary, usually missing, keys); arrays are indexed by
 * canonical non-negative integers. Returns {@link MISSING} when any step is absent.
 */
export function compileFieldLookup(field: string): Lookup {
  const segments = field.split(".");
  const rootProperty = FIELD_ROOTS[segments[0] as FieldRoot];
  const steps = segments.slice(1);
  const readStep = (value: unknown, step: string): unknown => {
    if (value === null || (typeof value !== "object" && typeof value !== "function")) return MISSING;
    if (Array.isArray(value)) {
      if (!ARRAY_INDEX.test(step)) return MISSING;
      const index = Number(step);
      return index < value.length ? value[index] : MISSING;
    }
    if (!Object.hasOwn(value, step)) return MISSING;
    return (value as Record<string, unknown>)[step];
  };
  const fromRoot = (input: EvaluationInput): unknown =>
    Object.hasOwn(input, rootProperty) ? (input[rootProperty] as unknown) : MISSING;
  const normalise = (value: unknown): unknown => (value === undefined ? MISSING : value);
  if (steps.length === 0) return (input) => normalise(fromRoot(input));
  if (steps.length === 1) {
    const only = steps[0] as string;
    return (input) => {
      const root = fromRoot(input);
      return root === MISSING ? MISSING : normalise(readStep(root, only));
    };
  }
  return (input) => {
    let value = fromRoot(input);
    for (let i = 0; i < steps.length && value !== MISSING; i++) value = readStep(value, steps[i] as string);
    return normalise(value);
  };
}
