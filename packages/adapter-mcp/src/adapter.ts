/**
 * The MCP adapter (rank 99, the backstop): governs tool calls made through the MCP TypeScript SDK in
 * this process, on both sides of the protocol, on each build of `@modelcontextprotocol/sdk` the host
 * can load.
 *
 * - Client: `Client.prototype.callTool`, and `Client.prototype.request` for `tools/call` only (the
 *   raw bypass). `callTool` itself calls `request`: it hands its call over synchronously so that one
 *   call is decided once.
 * - Server: `Server.prototype.setRequestHandler` wraps a `tools/call` handler when it is registered
 *   (public API; covers `McpServer` tools and low-level servers). A handler registered BEFORE install
 *   lives only in the server's private handler map, and servers cannot be enumerated, so
 *   `Server.prototype._onrequest` (the SDK's dispatch) wraps that map entry on the first `tools/call`
 *   the server receives; shutdown puts the original entry back.
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
  type CallShape,
  CLIENT_SPECIFIER,
  PATCH_TARGETS,
  type PatchTarget,
  SCHEMA_HELPER_SPECIFIER,
  SERVER_SPECIFIER,
  TARGET_PACKAGE,
  TOOLS_CALL,
} from "./patch-targets.js";
import {
  type ClientEntry,
  type ClientLike,
  clientToolCall,
  deniedToolResult,
  isGovernanceError,
  type ServerLike,
  serverToolCall,
} from "./translate.js";

/** The adapter's name (fixed by core: rank 99), also its owner tag on the wrappers it installs. */
export const MCP_ADAPTER_NAME = "mcp";
/** `@modelcontextprotocol/sdk` versions this adapter's tests run against. */
export const MCP_SUPPORTED_VERSIONS = ">=1.32.0 <1.33.0";

type Build = "esm" | "cjs";
// biome-ignore lint/suspicious/noExplicitAny: patched methods have SDK-defined signatures
type AnyMethod = (this: any, ...args: any[]) => any;
type RequestHandler = (this: unknown, request: unknown, extra: unknown) => unknown;
type MethodLiteralReader = (schema: unknown) => string | undefined;

/** A handler-map entry this installation replaced, to be put back at shutdown. */
interface ReplacedEntry {
  readonly map: WeakRef<Map<string, unknown>>;
  readonly governed: RequestHandler;
  readonly original: unknown;
}

/** Mutable state shared by the wrappers of one installation. */
interface InstallState {
  active: boolean;
  /** Set by `callTool` around its synchronous call of `request`, so `request` does not decide again. */
  handoff: { client: object; params: unknown } | undefined;
  /** `tools/call` handler-map entries already governed by this installation. */
  readonly governedEntries: WeakSet<object>;
  readonly replacedEntries: ReplacedEntry[];
}

interface Installation {
  readonly interceptor: Interceptor;
  readonly handles: WrapHandle[];
  readonly state: InstallState;
  readonly report: HookReport;
  /** `Client` / `Server` prototypes wrapped, per target (installed package and handed-over copies). */
  readonly wrapped: Map<PatchTarget, Set<object>>;
}

/** Options of {@link createMcpAdapter}. */
export interface McpAdapterOptions {
  /**
   * The app is bundled (esbuild, webpack, ncc...): `@modelcontextprotocol/sdk` is inlined into the
   * bundle, so the adapter stays available when the package does not resolve from the host, and
   * governs the bundled copy the app hands over with `manuallyInstrument(namespace)`. Default `false`.
   */
  bundled?: boolean;
}

/** Suffix of the entry points wrapped through `manuallyInstrument`. */
const MANUAL = "manual";

/** Create the MCP adapter; `initAssembly({ adapters: [createMcpAdapter()] })`. */
export function createMcpAdapter(options: McpAdapterOptions = {}): FrameworkAdapter {
  const bundled = options.bundled ?? false;
  if (typeof bundled !== "boolean") {
    throw new ConfigurationError("bundled", `createMcpAdapter: "bundled" must be a boolean`);
  }
  let installation: Installation | undefined;

  return {
    name: MCP_ADAPTER_NAME,
    supportedVersions: MCP_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 99,

    isAvailable(context: AdapterContext): boolean {
      return bundled || context.resolve(TARGET_PACKAGE) !== undefined;
    },

    async registerHooks(interceptor: Interceptor, context: AdapterContext): Promise<HookReport> {
      if (installation) return installation.report;
      const handles: WrapHandle[] = [];
      const state: InstallState = {
        active: true,
        handoff: undefined,
        governedEntries: new WeakSet(),
        replacedEntries: [],
      };
      const wrapped = new Map<PatchTarget, Set<object>>(PATCH_TARGETS.map((target) => [target, new Set()]));
      if (bundled && context.resolve(TARGET_PACKAGE) === undefined) {
        const report: HookReport = {
          entryPoints: [],
          detail: `${TARGET_PACKAGE} is not installed in the host app (bundled: true): waiting for manuallyInstrument(namespace, "${CLIENT_SPECIFIER}") and manuallyInstrument(namespace, "${SERVER_SPECIFIER}")`,
        };
        installation = { interceptor, handles, state, report, wrapped };
        return report;
      }
      try {
        const report = await install(interceptor, context, state, handles, wrapped);
        installation = { interceptor, handles, state, report, wrapped };
        return report;
      } catch (error) {
        teardown(handles, state);
        throw error;
      }
    },

    unregisterHooks(): void {
      const current = installation;
      installation = undefined;
      if (current) teardown(current.handles, current.state);
    },

    instrumentModule(specifier: string | undefined, namespace: Readonly<Record<string, unknown>>) {
      const current = installation;
      if (!current) return undefined;
      return instrumentNamespace(current, specifier, namespace);
    },
  };
}

/**
 * Govern the copy of the MCP SDK the app handed over with `manuallyInstrument` (bundled apps): the
 * namespace's `Client` / `Server` classes are wrapped with the same code and interceptor as the
 * installed package. `undefined` when the namespace exports neither.
 */
function instrumentNamespace(
  installation: Installation,
  specifier: string | undefined,
  namespace: Readonly<Record<string, unknown>>,
): HookReport | undefined {
  const entryPoints: string[] = [];
  const notes: string[] = [];
  let recognised = false;
  // A bundled SDK is not loadable by specifier: read schemas with the namespace's helper, if any.
  const readMethod = methodLiteralReader({ ok: true, module: namespace });
  for (const target of PATCH_TARGETS) {
    const prototype = (namespace[target.exportName] as { prototype?: unknown } | undefined)?.prototype as
      | Record<string, unknown>
      | undefined;
    if (typeof prototype !== "object" || prototype === null) continue;
    if (typeof prototype[target.method] !== "function") {
      // Another library's class of the same name is not ours; an SDK without the dispatch is noted.
      if (!target.required)
        notes.push(
          `${target.label} not patched: tools/call handlers registered before manuallyInstrument are not governed`,
        );
      continue;
    }
    recognised = true;
    const seen = installation.wrapped.get(target);
    // Idempotent: handing over the same copy (or the installed one) again wraps nothing twice.
    if (seen === undefined || seen.has(prototype)) continue;
    seen.add(prototype);
    installation.handles.push(
      wrapTarget(target, prototype, {
        interceptor: installation.interceptor,
        state: installation.state,
        readMethod,
      }),
    );
    entryPoints.push(`${target.label} (${MANUAL})`);
  }
  if (!recognised) return undefined;
  return notes.length > 0
    ? { entryPoints, detail: `${specifier ?? "the handed-over module"}: ${notes.join("; ")}` }
    : { entryPoints };
}

interface WrapDependencies {
  readonly interceptor: Interceptor;
  readonly state: InstallState;
  readonly readMethod: MethodLiteralReader;
}

/** Wrap one patch target on one copy of the SDK: the single patch both install paths use. */
function wrapTarget(target: PatchTarget, prototype: object, deps: WrapDependencies): WrapHandle {
  return wrapMethod(prototype as Record<string, AnyMethod>, target.method, MCP_ADAPTER_NAME, (original) =>
    makeWrapper(target.shape, { ...deps, original, label: target.label }),
  );
}

function teardown(handles: WrapHandle[], state: InstallState): void {
  state.active = false;
  state.handoff = undefined;
  for (const handle of [...handles].reverse()) handle.unwrap();
  for (const entry of state.replacedEntries.splice(0)) {
    const map = entry.map.deref();
    // Only while the server still holds our entry: a handler registered since then stays.
    if (map?.get(TOOLS_CALL) === entry.governed) map.set(TOOLS_CALL, entry.original);
  }
}

async function install(
  interceptor: Interceptor,
  context: AdapterContext,
  state: InstallState,
  handles: WrapHandle[],
  wrappedPrototypes: Map<PatchTarget, Set<object>>,
): Promise<HookReport> {
  const entryPoints: string[] = [];
  const notes: string[] = [];
  const seen = new Set<string>();
  const loaders: Record<Build, (specifier: string) => Promise<unknown>> = {
    esm: (specifier) => context.import(specifier),
    cjs: async (specifier) => context.require(specifier),
  };
  for (const target of PATCH_TARGETS) {
    const failures: string[] = [];
    let wrapped = 0;
    const prototypes = new Set<object>();
    for (const build of ["esm", "cjs"] as const) {
      const load = loaders[build];
      const loaded = await safelyLoad(load, target.specifier);
      if (!loaded.ok) {
        failures.push(`${build}: ${loaded.error}`);
        continue;
      }
      const prototype = (loaded.module as Record<string, { prototype?: unknown } | undefined>)[
        target.exportName
      ]?.prototype as Record<string, unknown> | undefined;
      if (typeof prototype !== "object" || prototype === null) {
        failures.push(`${build}: ${target.specifier} has no class ${target.exportName}`);
        continue;
      }
      if (typeof prototype[target.method] !== "function") {
        failures.push(`${build}: ${target.exportName}.prototype.${target.method} is not a function`);
        continue;
      }
      // A bundler or loader may hand both builds the same class: wrap it once.
      if (prototypes.has(prototype)) continue;
      prototypes.add(prototype);
      wrappedPrototypes.get(target)?.add(prototype);
      const readMethod = methodLiteralReader(await safelyLoad(load, SCHEMA_HELPER_SPECIFIER));
      handles.push(wrapTarget(target, prototype, { interceptor, state, readMethod }));
      entryPoints.push(`${target.label} (${build})`);
      seen.add(`${target.shape}:${build}`);
      wrapped += 1;
    }
    if (wrapped === 0 && target.required) {
      throw new AssemblyError(
        "ADAPTER_INSTALL_FAILED",
        `the MCP adapter found no copy of ${target.specifier} ${target.exportName}.prototype.${target.method} to patch (${failures.join("; ")}); ` +
          `install @modelcontextprotocol/sdk ${MCP_SUPPORTED_VERSIONS} in the application, or remove "mcp" from the adapters option`,
        { adapter: MCP_ADAPTER_NAME, specifier: target.specifier, failures },
      );
    }
    if (wrapped === 0) notes.push(`${target.label} not patched (${failures.join("; ")})`);
  }
  for (const build of ["esm", "cjs"] as const) {
    if (seen.has(`server-set-request-handler:${build}`) && !seen.has(`server-dispatch:${build}`)) {
      notes.push(`${build}: tools/call handlers registered before install are not governed`);
    }
  }
  return notes.length > 0 ? { entryPoints, detail: notes.join("; ") } : { entryPoints };
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
 * Reads the `method` literal of a request schema with the SDK's own helper (same build), so zod 3
 * and zod 4 schemas are read as the SDK reads them; `undefined` when it is not readable (the
 * original `setRequestHandler` then raises its own error).
 */
function methodLiteralReader(helper: LoadResult): MethodLiteralReader {
  const getMethodLiteral = helper.ok
    ? (helper.module as { getMethodLiteral?: (schema: unknown) => unknown }).getMethodLiteral
    : undefined;
  return (schema) => {
    try {
      if (typeof getMethodLiteral === "function") {
        const method = getMethodLiteral(schema);
        return typeof method === "string" ? method : undefined;
      }
      return literalOfMethod(schema);
    } catch {
      return undefined;
    }
  };
}

/** The `method` literal of a zod 3 or zod 4 object schema, read without the SDK's helper. */
function literalOfMethod(schema: unknown): string | undefined {
  type Def = { value?: unknown; values?: unknown[]; shape?: unknown };
  type Schema = { shape?: unknown; _def?: Def; _zod?: { def?: Def } } | undefined;
  const defOf = (of: Schema): Def | undefined => of?._zod?.def ?? of?._def;
  const object = schema as Schema;
  let shape = object?._zod?.def?.shape ?? object?.shape;
  if (typeof shape === "function") shape = (shape as () => unknown)();
  const method = (shape as { method?: Schema } | undefined)?.method;
  const def = defOf(method);
  const literal = def?.value ?? (Array.isArray(def?.values) ? def.values[0] : undefined);
  return typeof literal === "string" ? literal : undefined;
}

interface WrapperContext {
  readonly interceptor: Interceptor;
  readonly state: InstallState;
  readonly original: AnyMethod;
  readonly readMethod: MethodLiteralReader;
  readonly label: string;
}

function makeWrapper(shape: CallShape, wrapper: WrapperContext): AnyMethod {
  switch (shape) {
    case "client-call-tool":
      return governedCallTool(wrapper);
    case "client-request":
      return governedRequest(wrapper);
    case "server-set-request-handler":
      return governedSetRequestHandler(wrapper);
    case "server-dispatch":
      return governedDispatch(wrapper);
  }
}

/** `Client.prototype.callTool(params, resultSchema?, options?)`. */
function governedCallTool({ interceptor, state, original, label }: WrapperContext): AnyMethod {
  return function governedCallTool(this: ClientLike, ...args: unknown[]): Promise<unknown> {
    const params = args[0];
    return decideOnClient(interceptor, this, params, "callTool", label, () => {
      state.handoff = { client: this, params };
      try {
        return original.apply(this, args);
      } finally {
        state.handoff = undefined;
      }
    });
  };
}

/** `Client.prototype.request(request, resultSchema?, options?)`: governs `tools/call` only. */
function governedRequest({ interceptor, state, original, label }: WrapperContext): AnyMethod {
  return function governedRequest(this: ClientLike, ...args: unknown[]): unknown {
    const request = args[0] as { method?: unknown; params?: unknown } | undefined;
    if (request?.method !== TOOLS_CALL) return original.apply(this, args);
    const handoff = state.handoff;
    if (handoff !== undefined && handoff.client === this && handoff.params === request.params) {
      // Decided already by the governed callTool that is calling us right now.
      state.handoff = undefined;
      return original.apply(this, args);
    }
    // A task-augmented call (the experimental `requestStream` / `callToolStream` with a task) expects
    // a CreateTaskResult: there the denial is thrown, and the stream yields it as its error.
    const options = args[2] as { task?: unknown } | undefined;
    const answer = options?.task !== undefined || isTaskRequest(request) ? "throw" : "tool-result";
    return decideOnClient(
      interceptor,
      this,
      request.params,
      "request",
      label,
      () => original.apply(this, args),
      answer,
    );
  };
}

function decideOnClient(
  interceptor: Interceptor,
  client: ClientLike,
  params: unknown,
  entry: ClientEntry,
  label: string,
  invoke: () => unknown,
  answer: "tool-result" | "throw" = "tool-result",
): Promise<unknown> {
  let call: ToolCall;
  try {
    call = clientToolCall(client, params, entry);
  } catch (cause) {
    return Promise.reject(translationFailed(label, cause));
  }
  return interceptor.intercept(call, invoke).catch((error: unknown) => {
    // Answered like a tool that failed, WITHOUT contacting the server: the model reads why.
    if (answer === "tool-result" && isGovernanceError(error)) return deniedToolResult(error);
    throw error;
  });
}

/** `Server.prototype.setRequestHandler(schema, handler)`: governs a `tools/call` handler. */
function governedSetRequestHandler({
  interceptor,
  state,
  original,
  readMethod,
  label,
}: WrapperContext): AnyMethod {
  return function governedSetRequestHandler(this: ServerLike, ...args: unknown[]): unknown {
    const [schema, handler] = args;
    if (typeof handler !== "function" || readMethod(schema) !== TOOLS_CALL) return original.apply(this, args);
    const governed = governServerHandler(interceptor, state, this, handler as RequestHandler, label);
    const result = original.call(this, schema, governed);
    // The SDK stores its own closure around our handler: remember it, so dispatch does not wrap it again.
    const entry = handlerMapOf(this)?.get(TOOLS_CALL);
    if (typeof entry === "function") state.governedEntries.add(entry);
    return result;
  };
}

/** `Server.prototype._onrequest(request, extra)`: governs a handler registered before install. */
function governedDispatch({ interceptor, state, original, label }: WrapperContext): AnyMethod {
  return function governedDispatch(this: ServerLike, ...args: unknown[]): unknown {
    const request = args[0] as { method?: unknown } | undefined;
    if (request?.method === TOOLS_CALL) governExistingEntry(interceptor, state, this, label);
    return original.apply(this, args);
  };
}

function governExistingEntry(
  interceptor: Interceptor,
  state: InstallState,
  server: ServerLike,
  label: string,
): void {
  const map = handlerMapOf(server);
  const entry = map?.get(TOOLS_CALL);
  if (map === undefined || typeof entry !== "function" || state.governedEntries.has(entry)) return;
  const governed = governServerHandler(interceptor, state, server, entry as RequestHandler, label);
  map.set(TOOLS_CALL, governed);
  state.governedEntries.add(governed);
  state.replacedEntries.push({ map: new WeakRef(map), governed, original: entry });
}

/** The SDK-private handler map of a `Protocol` (`_requestHandlers`, a `Map` in SDK 1.x). */
function handlerMapOf(server: object): Map<string, unknown> | undefined {
  const map = (server as { _requestHandlers?: unknown })._requestHandlers;
  return map instanceof Map ? map : undefined;
}

/**
 * A governed `tools/call` handler. After shutdown it only passes calls through: the SDK keeps a
 * handler registered during the installation inside its own closure, out of our reach.
 */
function governServerHandler(
  interceptor: Interceptor,
  state: InstallState,
  server: ServerLike,
  handler: RequestHandler,
  label: string,
): RequestHandler {
  return function governedToolsCall(this: unknown, request: unknown, extra: unknown): unknown {
    if (!state.active) return handler.call(this, request, extra);
    let call: ToolCall;
    try {
      call = serverToolCall(server, request, extra);
    } catch (cause) {
      return Promise.reject(translationFailed(label, cause));
    }
    return interceptor
      .intercept(call, () => handler.call(this, request, extra))
      .catch((error: unknown) => {
        // A task-augmented call must answer with a CreateTaskResult: there the denial is a JSON-RPC
        // error carrying the same text.
        if (isGovernanceError(error) && !isTaskRequest(request)) return deniedToolResult(error);
        throw error;
      });
  };
}

function isTaskRequest(request: unknown): boolean {
  const params = (request as { params?: { task?: unknown } } | undefined)?.params;
  return typeof params === "object" && params !== null && params.task !== undefined;
}

function translationFailed(label: string, cause: unknown): AssemblyError {
  // Fail closed: a call we cannot describe to the gate is not run.
  return new AssemblyError(
    "ADAPTER_TRANSLATION_FAILED",
    `Agent Assembly could not translate an MCP tool call at ${label}, so it was not run: ${
      cause instanceof Error ? cause.message : String(cause)
    }`,
    { adapter: MCP_ADAPTER_NAME, entryPoint: label },
    { cause },
  );
}

/** The MCP adapter (what discovery installs). */
const mcpAdapter: FrameworkAdapter = createMcpAdapter();
export default mcpAdapter;
