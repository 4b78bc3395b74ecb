/**
 * The Vercel AI SDK adapter (`ai` v7): injects a governed `toolApproval` into every `generateText`,
 * `streamText` and `ToolLoopAgent` call, composed with the caller's own. The exported functions are
 * replaced on the namespace recorded by the import hook (`@aa/adapter-vercel-ai/register`, which
 * must run before the app imports `ai`); `ToolLoopAgent.prototype.prepareCall` is wrapped with
 * core's `wrapMethod`.
 */
import {
  type AdapterContext,
  AssemblyError,
  ConfigurationError,
  type FrameworkAdapter,
  type HookReport,
  type Interceptor,
  type WrapHandle,
  wrapMethod,
} from "@aa/core";
import { type ApprovalsMode, type GovernedApprovalSettings, governedToolApproval } from "./approval.js";
import { governedTools } from "./governed-tools.js";
import { effectiveCopies, type HookedCopy, importHookState } from "./hook-registry.js";
import { type ExportHandle, wrapExport } from "./namespace-patch.js";
import {
  AGENT_TARGET,
  EXPORT_TARGETS,
  exportLabel,
  TARGET_PACKAGE,
  TARGET_SPECIFIER,
} from "./patch-targets.js";

/** Options of {@link createVercelAiAdapter}. */
export interface VercelAiAdapterOptions {
  /**
   * How a call the gate holds for approval is answered. `"user-approval"` (default): the SDK emits a
   * `tool-approval-request` and the run ends, the app asks its user and answers both the SDK and
   * the gate ({@link answerGateApproval}); on the resumed run the gate's decision is waited for and
   * released once. `"wait"`: the run waits for the gate's decision (an operator answers with
   * `aa approvals` or `assembly.approve`), then the tool runs or is denied.
   */
  approvals?: ApprovalsMode;
  /**
   * What to do when the import hook is not in place (`ai` imported before
   * `@aa/adapter-vercel-ai/register`, or the register entry never loaded). `"fail"` (default):
   * installation fails with a `ConfigurationError` explaining `node --import`. `"agent-only"`:
   * govern `ToolLoopAgent` only (its prototype needs no hook); direct `generateText` / `streamText`
   * calls then run ungoverned, which the adapter's `detail` says.
   */
  withoutImportHook?: "fail" | "agent-only";
}

/** The adapter's name, also its owner tag on the wrappers it installs. */
export const VERCEL_AI_ADAPTER_NAME = "vercel-ai";
/** `ai` versions this adapter's tests run against. */
export const VERCEL_AI_SUPPORTED_VERSIONS = ">=6.0.322 <6.1.0 || >=7.0.173 <7.1.0";

interface Installation {
  readonly exportHandles: ExportHandle[];
  readonly methodHandles: WrapHandle[];
  readonly report: HookReport;
}

/** Create a Vercel AI SDK adapter; `initAssembly({ adapters: [createVercelAiAdapter({...})] })`. */
export function createVercelAiAdapter(options: VercelAiAdapterOptions = {}): FrameworkAdapter {
  if (typeof options !== "object" || options === null) {
    throw new ConfigurationError("options", "createVercelAiAdapter: options must be an object");
  }
  const approvals = options.approvals ?? "user-approval";
  if (approvals !== "user-approval" && approvals !== "wait") {
    throw new ConfigurationError(
      "approvals",
      `createVercelAiAdapter: "approvals" must be "user-approval" or "wait", got ${JSON.stringify(approvals)}`,
    );
  }
  const withoutImportHook = options.withoutImportHook ?? "fail";
  if (withoutImportHook !== "fail" && withoutImportHook !== "agent-only") {
    throw new ConfigurationError(
      "withoutImportHook",
      `createVercelAiAdapter: "withoutImportHook" must be "fail" or "agent-only", got ${JSON.stringify(withoutImportHook)}`,
    );
  }
  let installation: Installation | undefined;

  return {
    name: VERCEL_AI_ADAPTER_NAME,
    supportedVersions: VERCEL_AI_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 2,

    isAvailable(context: AdapterContext): boolean {
      return context.resolve(TARGET_SPECIFIER) !== undefined;
    },

    async registerHooks(interceptor: Interceptor, context: AdapterContext): Promise<HookReport> {
      if (installation) return installation.report;
      const current: Installation = { exportHandles: [], methodHandles: [], report: { entryPoints: [] } };
      try {
        const report = await install({ interceptor, approvals }, context, withoutImportHook, current);
        installation = { ...current, report };
        return report;
      } catch (error) {
        restore(current);
        throw error;
      }
    },

    unregisterHooks(): void {
      const current = installation;
      installation = undefined;
      if (current) restore(current);
    },
  };
}

function restore(installation: Installation): void {
  for (const handle of [...installation.methodHandles].reverse()) handle.unwrap();
  for (const handle of [...installation.exportHandles].reverse()) handle.unwrap();
}

async function install(
  settings: GovernedApprovalSettings,
  context: AdapterContext,
  withoutImportHook: "fail" | "agent-only",
  installation: Installation,
): Promise<HookReport> {
  const hook = importHookState();
  let loaded: Record<string, unknown>;
  try {
    // Through the hook when it is registered: the namespace is then recorded (see register.ts).
    loaded = await context.import<Record<string, unknown>>(TARGET_SPECIFIER);
  } catch (cause) {
    throw new AssemblyError(
      "ADAPTER_INSTALL_FAILED",
      `the Vercel AI adapter could not import "ai" from ${context.root}: ${cause instanceof Error ? cause.message : String(cause)}`,
      { adapter: VERCEL_AI_ADAPTER_NAME },
      { cause },
    );
  }
  const major = installedMajor(context);
  const inject = major === 6 ? injectTools : injectApproval;
  const copies = hook ? effectiveCopies(hook) : [];
  // The copy the host's own import resolves to must be among them, or the app is not covered.
  const hooked = copies.some(
    (copy) => copy.via === "import" && copy.namespace.generateText === loaded.generateText,
  );
  const entryPoints: string[] = [];
  let detail: string | undefined;
  if (hooked) {
    for (const copy of copies) wrapExports(copy, settings, inject, major, installation, entryPoints);
  } else if (withoutImportHook === "fail") {
    throw missingHookError(hook !== undefined, context.root);
  } else {
    detail =
      "import hook not registered: only ToolLoopAgent is governed; direct generateText/streamText calls are not " +
      "(start node with --import @aa/adapter-vercel-ai/register)";
  }
  // Each build's class: the ESM one, and (ai v6) the CommonJS one `require("ai")` returns.
  const agentClasses = new Map<unknown, "esm" | "cjs">([[loaded[AGENT_TARGET.exportName], "esm"]]);
  for (const copy of hooked ? copies : []) {
    if (copy.via === "import" && !agentClasses.has(copy.namespace[AGENT_TARGET.exportName])) {
      agentClasses.set(copy.namespace[AGENT_TARGET.exportName], "esm");
    }
  }
  const requiredClass = safelyRequireExport(context, AGENT_TARGET.exportName);
  if (requiredClass !== undefined && !agentClasses.has(requiredClass)) agentClasses.set(requiredClass, "cjs");
  for (const [agentClass, build] of agentClasses) {
    const prototype = (agentClass as { prototype?: unknown } | undefined)?.prototype;
    if (typeof prototype !== "object" || prototype === null) continue;
    const handle = wrapMethod(
      prototype as Record<string, (...args: unknown[]) => unknown>,
      AGENT_TARGET.method,
      VERCEL_AI_ADAPTER_NAME,
      (original) => governedPrepareCall(original, inject, settings),
    );
    installation.methodHandles.push(handle);
    entryPoints.push(`${AGENT_TARGET.label} (${build})`);
  }
  if (installation.methodHandles.length === 0) {
    throw new AssemblyError(
      "ADAPTER_INSTALL_FAILED",
      `the Vercel AI adapter found no ToolLoopAgent class in "ai"; install ai ${VERCEL_AI_SUPPORTED_VERSIONS} in the application`,
      { adapter: VERCEL_AI_ADAPTER_NAME },
    );
  }
  return detail === undefined ? { entryPoints } : { entryPoints, detail };
}

function wrapExports(
  copy: HookedCopy,
  settings: GovernedApprovalSettings,
  inject: Injector,
  major: number,
  installation: Installation,
  entryPoints: string[],
): void {
  const { namespace, via } = copy;
  for (const target of EXPORT_TARGETS) {
    if (typeof namespace[target.exportName] !== "function") {
      if (!target.required) continue;
      throw new AssemblyError(
        "ADAPTER_INSTALL_FAILED",
        `the Vercel AI adapter found no function ${target.exportName} in "ai"; install ai ${VERCEL_AI_SUPPORTED_VERSIONS} in the application`,
        { adapter: VERCEL_AI_ADAPTER_NAME, exportName: target.exportName },
      );
    }
    const handle = wrapExport(namespace, target.exportName, VERCEL_AI_ADAPTER_NAME, (original) =>
      governedCall(original, inject, settings),
    );
    installation.exportHandles.push(handle);
    entryPoints.push(exportLabel(target, via, via === "require" && major === 6 ? "cjs" : "esm"));
  }
}

function missingHookError(registered: boolean, root: string): ConfigurationError {
  const why = registered
    ? `"ai" was imported before @aa/adapter-vercel-ai/register registered its import hook`
    : "the import hook @aa/adapter-vercel-ai/register is not loaded";
  return new ConfigurationError(
    "adapters",
    `the Vercel AI adapter cannot govern generateText/streamText: ${why}, and an ES module's exports cannot be ` +
      `changed afterwards. Start the app with \`node --import @aa/adapter-vercel-ai/register app.js\` ` +
      `(or NODE_OPTIONS="--import @aa/adapter-vercel-ai/register"), or pass ` +
      `createVercelAiAdapter({ withoutImportHook: "agent-only" }) to govern ToolLoopAgent only.`,
    { adapter: VERCEL_AI_ADAPTER_NAME, root, hookRegistered: registered },
  );
}

/** Puts governance into one call's options (v7: `toolApproval`; v6: the `tools` map). */
type Injector = (
  options: Record<string, unknown>,
  settings: GovernedApprovalSettings,
) => Record<string, unknown>;

const injectApproval: Injector = (options, settings) => ({
  ...options,
  toolApproval: governedToolApproval(options.toolApproval, settings),
});

const injectTools: Injector = (options, settings) =>
  options.tools === undefined ? options : { ...options, tools: governedTools(options.tools, settings) };

/** `generateText(options)` / `streamText(options)` with governance injected into the options. */
function governedCall(
  original: (...args: unknown[]) => unknown,
  inject: Injector,
  settings: GovernedApprovalSettings,
) {
  return function governedAiCall(this: unknown, ...args: unknown[]): unknown {
    const [options, ...rest] = args;
    // Not an options object: the SDK reports the mistake itself.
    if (typeof options !== "object" || options === null) return original.apply(this, args);
    return original.call(this, inject(options as Record<string, unknown>, settings), ...rest);
  };
}

/** `ToolLoopAgent.prototype.prepareCall`: the prepared call gets governance injected. */
function governedPrepareCall(
  original: (...args: unknown[]) => unknown,
  inject: Injector,
  settings: GovernedApprovalSettings,
) {
  return async function governedPrepare(this: unknown, ...args: unknown[]): Promise<unknown> {
    const prepared = await original.apply(this, args);
    if (typeof prepared !== "object" || prepared === null) return prepared;
    return inject(prepared as Record<string, unknown>, settings);
  };
}

/** The major version of the host's `ai` (7 when it cannot be read: the current API). */
function installedMajor(context: AdapterContext): number {
  try {
    const { version } = context.require("ai/package.json") as { version?: unknown };
    const major = typeof version === "string" ? Number.parseInt(version, 10) : Number.NaN;
    return Number.isInteger(major) ? major : 7;
  } catch {
    return 7;
  }
}

/** `require("ai")[name]` as the host would get it (ai v6's CommonJS build), if it loads. */
function safelyRequireExport(context: AdapterContext, name: string): unknown {
  try {
    return (context.require(TARGET_SPECIFIER) as Record<string, unknown>)[name];
  } catch {
    return undefined;
  }
}

/** The Vercel AI SDK adapter with default options (what discovery installs). */
const vercelAiAdapter: FrameworkAdapter = createVercelAiAdapter();
export default vercelAiAdapter;
