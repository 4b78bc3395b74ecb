/**
 * Where the Vercel AI SDK can be governed, as data. `ai` v7 is ESM only and its module namespace is
 * read-only; `ai` v6 ships ESM and CommonJS builds whose exports are getters: the exported
 * functions are replaced through the hooks' views (see `register.ts`); `ToolLoopAgent` is governed
 * on its prototype (each build's class), which needs no hook.
 */

/** An exported function whose options accept `toolApproval`; wrapped on the hooked namespace. */
export interface ExportTarget {
  readonly exportName: string;
  /** A required export missing from the installed `ai` makes installation fail. */
  readonly required: boolean;
}

/** A prototype method of an exported class. */
export interface PrototypeTarget {
  readonly exportName: string;
  readonly method: string;
  readonly label: string;
}

export const EXPORT_TARGETS: readonly ExportTarget[] = [
  { exportName: "generateText", required: true },
  { exportName: "streamText", required: true },
  { exportName: "experimental_streamTextLowMemory", required: false },
];

/**
 * Human-readable entry point, reported in `assembly.adapters[].entryPoints`:
 * `ai#generateText (esm, import hook)` or `ai#generateText (esm, require hook)`.
 */
export function exportLabel(target: ExportTarget, via: "import" | "require", build: "esm" | "cjs"): string {
  return `ai#${target.exportName} (${build}, ${via} hook)`;
}

/** `ToolLoopAgent.generate/stream` call the SDK's internal functions, after `prepareCall`. */
export const AGENT_TARGET: PrototypeTarget = {
  exportName: "ToolLoopAgent",
  method: "prepareCall",
  label: "ai#ToolLoopAgent.prototype.prepareCall",
};

/** The module specifier governed, resolved from the host application. */
export const TARGET_SPECIFIER = "ai";

/** The package whose installed version must satisfy the adapter's `supportedVersions`. */
export const TARGET_PACKAGE = "ai";
