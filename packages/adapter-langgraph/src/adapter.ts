/**
 * The LangGraph.js adapter. Tool calls inside graphs are LangChain tool calls, governed once by the
 * LangChain adapter; this adapter wraps nothing. It enriches those calls with their graph context
 * (thread, node, run), keys them by thread and tool-call id so a resumed graph neither re-decides
 * nor re-executes them, and can suspend a held call as a native LangGraph interrupt.
 */
import {
  type AdapterContext,
  AssemblyError,
  ConfigurationError,
  type FrameworkAdapter,
  type HookReport,
  type InterceptOptions,
  isWrapped,
  type ToolCall,
} from "@aa/core";
import { INTERRUPT_SPECIFIER, TARGET_PACKAGE } from "./patch-targets.js";
import { addGraphMetadata, approvalInterrupt, graphContextOf, graphEventId } from "./translate.js";

/** Options of {@link createLangGraphAdapter}. */
export interface LangGraphAdapterOptions {
  /**
   * What a call held for approval does inside a graph:
   * - `"wait"` (default): the tool call waits for the operator's decision (gate semantics).
   * - `"interrupt"`: the graph pauses with a LangGraph `interrupt()` (needs a checkpointer); after
   *   the operator decides, resume with `new Command({ resume: ... })` and the call runs or is denied.
   */
  approvals?: "wait" | "interrupt";
}

/** The adapter's name. */
export const LANGGRAPH_ADAPTER_NAME = "langgraph";
/**
 * `@langchain/langgraph` versions this adapter supports: exactly what the version matrix
 * (`scripts/version-matrix.mjs`) installs and tests.
 */
export const LANGGRAPH_SUPPORTED_VERSIONS = ">=1.0.0 <1.8.0";

/** Owner tag of the LangChain adapter's wrappers (its adapter name). */
const LANGCHAIN_OWNER = "langchain";

type InterruptFunction = (value: unknown) => unknown;

/** Create a LangGraph adapter; `initAssembly({ adapters: [langchain, createLangGraphAdapter({...})] })`. */
export function createLangGraphAdapter(options: LangGraphAdapterOptions = {}): FrameworkAdapter {
  const approvals = options.approvals ?? "wait";
  if (approvals !== "wait" && approvals !== "interrupt") {
    throw new ConfigurationError(
      "approvals",
      `createLangGraphAdapter: "approvals" must be "wait" or "interrupt", got ${JSON.stringify(approvals)}`,
    );
  }
  let interrupt: InterruptFunction | undefined;
  let installed = false;

  const onHold = (held: Parameters<NonNullable<InterceptOptions["onHold"]>>[0], call: ToolCall): void => {
    // Throws GraphInterrupt on the first pass (the graph pauses); returns once resumed.
    interrupt?.(approvalInterrupt(held, call));
  };

  return {
    name: LANGGRAPH_ADAPTER_NAME,
    supportedVersions: LANGGRAPH_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 1,

    isAvailable(context: AdapterContext): boolean {
      return context.resolve("@langchain/langgraph") !== undefined;
    },

    async registerHooks(_interceptor, context: AdapterContext): Promise<HookReport> {
      if (approvals === "interrupt" && interrupt === undefined) {
        // interrupt() finds its graph through LangChain's process-wide AsyncLocalStorage, so the
        // ESM build serves graphs of either build.
        let loaded: unknown;
        try {
          loaded = ((await context.import(INTERRUPT_SPECIFIER)) as { interrupt?: unknown }).interrupt;
        } catch (cause) {
          throw new AssemblyError(
            "ADAPTER_INSTALL_FAILED",
            `the LangGraph adapter (approvals: "interrupt") could not import ${INTERRUPT_SPECIFIER} from the application: ${String(cause)}`,
            { adapter: LANGGRAPH_ADAPTER_NAME },
            { cause },
          );
        }
        if (typeof loaded !== "function") {
          throw new AssemblyError(
            "ADAPTER_INSTALL_FAILED",
            `the LangGraph adapter (approvals: "interrupt") found no interrupt() export in ${INTERRUPT_SPECIFIER}; install @langchain/langgraph ${LANGGRAPH_SUPPORTED_VERSIONS}`,
            { adapter: LANGGRAPH_ADAPTER_NAME },
          );
        }
        interrupt = loaded as InterruptFunction;
      }
      await assertLangChainGoverned(context);
      installed = true;
      // Nothing is wrapped: graph tool calls reach the gate through the LangChain adapter.
      return { entryPoints: [] };
    },

    unregisterHooks(): void {
      installed = false;
      interrupt = undefined;
    },

    enrichCall(call: ToolCall): InterceptOptions | undefined {
      if (!installed) return undefined;
      const context = graphContextOf(call.native);
      if (context === undefined) return undefined;
      addGraphMetadata(call, context);
      const options: InterceptOptions = {};
      const eventId = graphEventId(context, call.toolCallId);
      if (eventId !== undefined) options.eventId = eventId;
      if (approvals === "interrupt") options.onHold = onHold;
      return options;
    },
  };
}

/**
 * Graph tool calls are governed by the LangChain adapter (rank 0, installed before this one). Without
 * it they would run ungoverned, so refuse to install rather than give a false sense of coverage.
 */
async function assertLangChainGoverned(context: AdapterContext): Promise<void> {
  const copies: unknown[] = [];
  try {
    copies.push(
      ((await context.import("@langchain/core/tools")) as { StructuredTool?: unknown }).StructuredTool,
    );
  } catch {
    // The host may load only one build.
  }
  try {
    copies.push((context.require("@langchain/core/tools") as { StructuredTool?: unknown }).StructuredTool);
  } catch {
    // Idem.
  }
  const governed = copies.some((copy) => {
    const call = (copy as { prototype?: { call?: unknown } } | undefined)?.prototype?.call;
    return isWrapped(call, LANGCHAIN_OWNER);
  });
  if (!governed) {
    throw new AssemblyError(
      "ADAPTER_INSTALL_FAILED",
      "the LangGraph adapter needs the LangChain adapter: LangGraph tool calls are LangChain tool calls, and no LangChain " +
        'patch is installed. Add @aa/adapter-langchain to the application\'s dependencies (or list "langchain" before ' +
        '"langgraph" in the adapters option).',
      { adapter: LANGGRAPH_ADAPTER_NAME },
    );
  }
}

/** The LangGraph adapter with default options (what discovery installs). */
const langgraphAdapter: FrameworkAdapter = createLangGraphAdapter();
export default langgraphAdapter;
