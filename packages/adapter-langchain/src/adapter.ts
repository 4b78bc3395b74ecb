/**
 * The LangChain.js adapter: governs every LangChain tool call by wrapping the one method all tools
 * go through, `StructuredTool.prototype.call`, on each build of `@langchain/core` the host can load
 * (plus `RunnableToolLike.prototype.invoke` for `runnable.asTool()` tools).
 */
import {
  type AdapterContext,
  AssemblyError,
  ConfigurationError,
  type FrameworkAdapter,
  type HookReport,
  type Interceptor,
  type ToolCall,
  type WrapHandle,
  wrapMethod,
} from "@aa/core";
import { MESSAGES_SPECIFIER, PATCH_TARGETS, type PatchTarget, TARGET_PACKAGE } from "./patch-targets.js";
import {
  deniedToolMessage,
  isGovernanceError,
  type ToolLike,
  type ToolMessageConstructor,
  toToolCall,
} from "./translate.js";

/** Options of {@link createLangChainAdapter}. */
export interface LangChainAdapterOptions {
  /**
   * How a denied call that carries a tool-call id (a call made by an agent or a ToolNode) is
   * answered: `"tool-message"` (default) returns an error `ToolMessage` the model reads, so the agent
   * can correct itself; `"throw"` throws the typed `AssemblyDeniedError` / `AssemblyTimeoutError`.
   * Calls without a tool-call id (direct `tool.invoke(args)`) always throw.
   */
  denials?: "tool-message" | "throw";
  /** Also govern `runnable.asTool()` tools (`RunnableToolLike.prototype.invoke`). Default `true`. */
  runnableTools?: boolean;
}

/** The adapter's name, also its owner tag on the wrappers it installs. */
export const LANGCHAIN_ADAPTER_NAME = "langchain";
/**
 * `@langchain/core` versions this adapter supports: exactly what the version matrix
 * (`scripts/version-matrix.mjs`) installs and tests.
 */
export const LANGCHAIN_SUPPORTED_VERSIONS = ">=1.0.0 <1.5.0";

type Build = "esm" | "cjs";

interface Installation {
  readonly handles: WrapHandle[];
  readonly report: HookReport;
}

/** Create a LangChain adapter; `initAssembly({ adapters: [createLangChainAdapter({...})] })`. */
export function createLangChainAdapter(options: LangChainAdapterOptions = {}): FrameworkAdapter {
  const denials = options.denials ?? "tool-message";
  if (denials !== "tool-message" && denials !== "throw") {
    throw new ConfigurationError(
      "denials",
      `createLangChainAdapter: "denials" must be "tool-message" or "throw", got ${JSON.stringify(denials)}`,
    );
  }
  const runnableTools = options.runnableTools ?? true;
  if (typeof runnableTools !== "boolean") {
    throw new ConfigurationError(
      "runnableTools",
      `createLangChainAdapter: "runnableTools" must be a boolean`,
    );
  }
  const targets = PATCH_TARGETS.filter((target) => runnableTools || target.shape !== "runnable-tool-invoke");
  let installation: Installation | undefined;

  return {
    name: LANGCHAIN_ADAPTER_NAME,
    supportedVersions: LANGCHAIN_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 0,

    isAvailable(context: AdapterContext): boolean {
      return context.resolve("@langchain/core/tools") !== undefined;
    },

    async registerHooks(interceptor: Interceptor, context: AdapterContext): Promise<HookReport> {
      if (installation) return installation.report;
      const handles: WrapHandle[] = [];
      try {
        installation = { handles, report: await install(interceptor, context, targets, denials, handles) };
        return installation.report;
      } catch (error) {
        for (const handle of handles.reverse()) handle.unwrap();
        throw error;
      }
    },

    unregisterHooks(): void {
      const current = installation;
      installation = undefined;
      if (!current) return;
      for (const handle of [...current.handles].reverse()) handle.unwrap();
    },
  };
}

async function install(
  interceptor: Interceptor,
  context: AdapterContext,
  targets: readonly PatchTarget[],
  denials: "tool-message" | "throw",
  handles: WrapHandle[],
): Promise<HookReport> {
  const entryPoints: string[] = [];
  const seenPrototypes = new Set<object>();
  const loaders: Record<Build, (specifier: string) => Promise<unknown>> = {
    esm: (specifier) => context.import(specifier),
    cjs: async (specifier) => context.require(specifier),
  };
  for (const target of targets) {
    const failures: string[] = [];
    let wrapped = 0;
    for (const build of ["esm", "cjs"] as const) {
      const load = loaders[build];
      const loaded = await safelyLoad(load, target.specifier);
      if (!loaded.ok) {
        failures.push(`${build}: ${loaded.error}`);
        continue;
      }
      const prototype = (loaded.module as Record<string, { prototype?: unknown } | undefined>)[
        target.exportName
      ]?.prototype;
      if (typeof prototype !== "object" || prototype === null) {
        failures.push(`${build}: ${target.specifier} has no class ${target.exportName}`);
        continue;
      }
      // A bundler or loader may hand both builds the same class: wrap it once.
      if (seenPrototypes.has(prototype)) continue;
      seenPrototypes.add(prototype);
      const messages = await safelyLoad(load, MESSAGES_SPECIFIER);
      const ToolMessage = messages.ok
        ? (messages.module as { ToolMessage?: ToolMessageConstructor }).ToolMessage
        : undefined;
      const answerWith = denials === "tool-message" ? ToolMessage : undefined;
      const handle = wrapMethod(
        prototype as Record<string, (...args: unknown[]) => unknown>,
        target.method,
        LANGCHAIN_ADAPTER_NAME,
        (original) => governed(interceptor, target, original, answerWith),
      );
      handles.push(handle);
      entryPoints.push(`${target.label} (${build})`);
      wrapped += 1;
    }
    if (wrapped === 0 && target.required) {
      throw new AssemblyError(
        "ADAPTER_INSTALL_FAILED",
        `the LangChain adapter found no copy of ${target.specifier} ${target.exportName} to patch (${failures.join("; ")}); ` +
          `install @langchain/core ${LANGCHAIN_SUPPORTED_VERSIONS} in the application, or remove "langchain" from the adapters option`,
        { adapter: LANGCHAIN_ADAPTER_NAME, specifier: target.specifier, failures },
      );
    }
  }
  return { entryPoints };
}

type LoadResult = { ok: true; module: unknown } | { ok: false; error: string };

/** Load a module, reporting (not throwing) when the host cannot load that build. */
async function safelyLoad(
  load: (specifier: string) => Promise<unknown>,
  specifier: string,
): Promise<LoadResult> {
  try {
    return { ok: true, module: await load(specifier) };
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * The wrapper around one LangChain method: translate, ask the gate through the interceptor, run
 * the original with the very same arguments when allowed, answer denials in LangChain's shape.
 */
function governed(
  interceptor: Interceptor,
  target: PatchTarget,
  original: (...args: unknown[]) => unknown,
  ToolMessage: ToolMessageConstructor | undefined,
) {
  return function governedToolCall(this: ToolLike, ...args: unknown[]): Promise<unknown> {
    let call: ToolCall;
    try {
      call = toToolCall(this, target.shape, args);
    } catch (cause) {
      // Fail closed: a call we cannot describe to the gate is not run.
      return Promise.reject(
        new AssemblyError(
          "ADAPTER_TRANSLATION_FAILED",
          `Agent Assembly could not translate a LangChain tool call at ${target.label}, so it was not run: ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
          { adapter: LANGCHAIN_ADAPTER_NAME, entryPoint: target.label },
          { cause },
        ),
      );
    }
    return interceptor
      .intercept(call, () => original.apply(this, args))
      .catch((error: unknown) => {
        if (ToolMessage && call.toolCallId !== undefined && isGovernanceError(error)) {
          return deniedToolMessage(ToolMessage, error, call, call.toolCallId);
        }
        throw error;
      });
  };
}

/** The LangChain adapter with default options (what discovery installs). */
const langchainAdapter: FrameworkAdapter = createLangChainAdapter();
export default langchainAdapter;
