/**
 * Where the OpenAI Agents SDK can be governed, as data. `Agent.prototype.getAllTools` returns every
 * function tool an agent exposes on a turn (its own and MCP-derived ones); each copy of
 * `@openai/agents-core` the host can load (its ESM build and its CJS build are different classes)
 * is patched.
 */

/** The package that defines `Agent` (whose installed version must satisfy `supportedVersions`). */
export const TARGET_PACKAGE = "@openai/agents-core";

/**
 * Packages that re-export `Agent` from their own dependency on `@openai/agents-core`: a host that
 * only depends on `@openai/agents` uses the core copy resolved from there, not from its root.
 */
export const REEXPORTING_PACKAGES: readonly string[] = ["@openai/agents"];

/** The class and method patched on each copy. */
export const PATCH_TARGET = {
  exportName: "Agent",
  method: "getAllTools",
  label: "@openai/agents-core Agent.prototype.getAllTools",
} as const;
