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
import {
  MESSAGES_SPECIFIER,
  PATCH_TARGETS,
  type PatchTarget,
  TARGET_PACKAGE,
  TOOLS_SPECIFIER,
} from "./patch-targets.js";
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
  /**
   * The app is bundled (esbuild, webpack, ncc...): `@langchain/core` is inlined into the bundle, so
   * the adapter stays available when the package does not resolve from the host, and governs the
   * bundled copy the app hands over with `manuallyInstrument(namespace)`. Default `false`.
   */
  bundled?: boolean;
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
  readonly interceptor: Interceptor;
  readonly handles: WrapHandle[];
  readonly report: HookReport;
  /** Prototypes wrapped by this installation (installed package and handed-over copies). */
  readonly prototypes: Set<object>;
  /** `ToolMessage` of a bundled `@langchain/core/messages` handed over with `manuallyInstrument`. */
  manualToolMessage: ToolMessageConstructor | undefined;
}

/** How one installation answers a denied call that carries a tool-call id. */
type DenialAnswer = () => ToolMessageConstructor | undefined;

/** Suffix of the entry points wrapped through `manuallyInstrument`. */
const MANUAL = "manual";

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
  const bundled = options.bundled ?? false;
  if (typeof bundled !== "boolean") {
    throw new ConfigurationError("bundled", `createLangChainAdapter: "bundled" must be a boolean`);
  }
  const targets = PATCH_TARGETS.filter((target) => runnableTools || target.shape !== "runnable-tool-invoke");
  let installation: Installation | undefined;

  return {
    name: LANGCHAIN_ADAPTER_NAME,
    supportedVersions: LANGCHAIN_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 0,

    isAvailable(context: AdapterContext): boolean {
      return bundled || context.resolve(TOOLS_SPECIFIER) !== undefined;
    },

    async registerHooks(interceptor: Interceptor, context: AdapterContext): Promise<HookReport> {
      if (installation) return installation.report;
      const handles: WrapHandle[] = [];
      const prototypes = new Set<object>();
      if (bundled && context.resolve(TOOLS_SPECIFIER) === undefined) {
        installation = {
          interceptor,
          handles,
          prototypes,
          manualToolMessage: undefined,
          report: {
            entryPoints: [],
            detail: `${TARGET_PACKAGE} is not installed in the host app (bundled: true): waiting for manuallyInstrument(namespace, "${TOOLS_SPECIFIER}")`,
          },
        };
        return installation.report;
      }
      try {
        const report = await install(interceptor, context, targets, denials, handles, prototypes);
        installation = { interceptor, handles, prototypes, manualToolMessage: undefined, report };
        return report;
      } catch (error) {
        for (const handle of handles.reverse()) handle.unwrap();
        throw error;
      }
    },

    instrumentModule(specifier: string | undefined, namespace: Readonly<Record<string, unknown>>) {
      const current = installation;
      if (!current) return undefined;
      return instrumentNamespace(current, targets, denials, specifier, namespace);
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
  seenPrototypes: Set<object>,
): Promise<HookReport> {
  const entryPoints: string[] = [];
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
      handles.push(
        wrapTarget(
          interceptor,
          target,
          prototype,
          denialAnswer(denials, () => ToolMessage),
        ),
      );
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

/**
 * Govern the copy of LangChain the app handed over with `manuallyInstrument` (bundled apps): the
 * namespace's `StructuredTool` / `RunnableToolLike` classes are wrapped with the same code and
 * interceptor as the installed package. A `@langchain/core/messages` namespace supplies the
 * `ToolMessage` class that denials of bundled tools are answered with. `undefined` when the
 * namespace is none of these.
 */
function instrumentNamespace(
  installation: Installation,
  targets: readonly PatchTarget[],
  denials: "tool-message" | "throw",
  specifier: string | undefined,
  namespace: Readonly<Record<string, unknown>>,
): HookReport | undefined {
  const entryPoints: string[] = [];
  let recognised = false;
  for (const target of targets) {
    const prototype = (namespace[target.exportName] as { prototype?: unknown } | undefined)?.prototype;
    if (typeof prototype !== "object" || prototype === null) continue;
    if (typeof (prototype as Record<string, unknown>)[target.method] !== "function") continue;
    recognised = true;
    // Idempotent: handing over the same copy (or the installed one) again wraps nothing twice.
    if (installation.prototypes.has(prototype)) continue;
    installation.prototypes.add(prototype);
    const fromNamespace = (namespace.ToolMessage as ToolMessageConstructor | undefined) ?? undefined;
    installation.handles.push(
      wrapTarget(
        installation.interceptor,
        target,
        prototype,
        denialAnswer(denials, () => fromNamespace ?? installation.manualToolMessage),
      ),
    );
    entryPoints.push(`${target.label} (${MANUAL})`);
  }
  const ToolMessage = namespace.ToolMessage;
  if (typeof ToolMessage === "function" && typeof namespace.AIMessage === "function") {
    installation.manualToolMessage = ToolMessage as ToolMessageConstructor;
    return {
      entryPoints,
      detail: `${specifier ?? "the handed-over module"}: its ToolMessage answers denials of handed-over tools that carry a tool-call id`,
    };
  }
  if (!recognised) return undefined;
  return entryPoints.length === 0 || installation.manualToolMessage || denials === "throw"
    ? { entryPoints }
    : {
        entryPoints,
        detail: `denials of handed-over tools throw until the bundled ${MESSAGES_SPECIFIER} is handed over too (its ToolMessage answers denials that carry a tool-call id)`,
      };
}

/** Which `ToolMessage` a denial is answered with (none under `denials: "throw"`). */
function denialAnswer(denials: "tool-message" | "throw", toolMessage: DenialAnswer): DenialAnswer {
  return denials === "tool-message" ? toolMessage : () => undefined;
}

/** Wrap one patch target on one copy of LangChain: the single patch both install paths use. */
function wrapTarget(
  interceptor: Interceptor,
  target: PatchTarget,
  prototype: object,
  answerWith: DenialAnswer,
): WrapHandle {
  return wrapMethod(
    prototype as Record<string, (...args: unknown[]) => unknown>,
    target.method,
    LANGCHAIN_ADAPTER_NAME,
    (original) => governed(interceptor, target, original, answerWith),
  );
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
  answerWith: DenialAnswer,
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
    const running = interceptor.intercept(call, () => original.apply(this, args));
    // Only a call with a tool-call id can be answered with a ToolMessage: a direct
    // `tool.invoke(args)` gets the interceptor's promise as is (no extra promise, no extra hop).
    if (call.toolCallId === undefined) return running;
    return running.catch((error: unknown) => {
      const ToolMessage = answerWith();
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
