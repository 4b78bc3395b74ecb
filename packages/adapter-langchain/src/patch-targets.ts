/**
 * Where LangChain.js can be governed, as data. Each target is patched on every copy of
 * `@langchain/core` the host can load (its ESM build and its CJS build are different classes).
 */

/** How a patched method receives its arguments. */
export type CallShape =
  /** `StructuredTool.prototype.call(arg, configArg?, tags?)`: the single choke point of every tool. */
  | "structured-tool-call"
  /** `RunnableToolLike.prototype.invoke(input, config?)`: `runnable.asTool()` tools. */
  | "runnable-tool-invoke";

export interface PatchTarget {
  /** Module specifier, resolved from the host application. */
  readonly specifier: string;
  /** Exported class whose prototype holds the method. */
  readonly exportName: string;
  readonly method: string;
  readonly shape: CallShape;
  /** Human-readable entry point, reported with the build it was found in (`(esm)` / `(cjs)`). */
  readonly label: string;
  /** A required target makes installation fail when no copy of it could be patched. */
  readonly required: boolean;
}

export const PATCH_TARGETS: readonly PatchTarget[] = [
  {
    specifier: "@langchain/core/tools",
    exportName: "StructuredTool",
    method: "call",
    shape: "structured-tool-call",
    label: "@langchain/core/tools StructuredTool.prototype.call",
    required: true,
  },
  {
    specifier: "@langchain/core/runnables",
    exportName: "RunnableToolLike",
    method: "invoke",
    shape: "runnable-tool-invoke",
    label: "@langchain/core/runnables RunnableToolLike.prototype.invoke",
    required: false,
  },
];

/** Where `StructuredTool` lives: what the adapter resolves to tell whether LangChain is installed. */
export const TOOLS_SPECIFIER = "@langchain/core/tools";

/** Where the `ToolMessage` class a denial is answered with lives (same build as the tool). */
export const MESSAGES_SPECIFIER = "@langchain/core/messages";

/** The package whose installed version must satisfy the adapter's `supportedVersions`. */
export const TARGET_PACKAGE = "@langchain/core";
