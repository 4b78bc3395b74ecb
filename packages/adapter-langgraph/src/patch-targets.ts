/**
 * Where LangGraph.js is governed, as data. LangGraph's ToolNode (and `createReactAgent`,
 * `langchain`'s `createAgent`) run LangChain tools through `tool.invoke(...)`, which the LangChain
 * adapter already wraps: this adapter patches no method, so no tool call is intercepted twice.
 * It adds graph context to those calls (`enrichCall`) and can turn approvals into interrupts.
 */

/** Methods this adapter wraps: none (see above). */
export const PATCH_TARGETS: readonly never[] = [];

/** The package whose installed version must satisfy the adapter's `supportedVersions`. */
export const TARGET_PACKAGE = "@langchain/langgraph";

/** Where `interrupt()` comes from (only loaded with `approvals: "interrupt"`). */
export const INTERRUPT_SPECIFIER = "@langchain/langgraph";
