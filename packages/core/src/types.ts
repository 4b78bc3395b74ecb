/**
 * Public contract for adapter authors and users of @aa/core.
 * Adapters target `FrameworkAdapter` and talk to the gate only through `Interceptor`.
 */

/** One tool call, translated from a framework's own shape. */
export interface ToolCall {
  /** Framework that produced the call, e.g. `"langchain"`. */
  framework: string;
  toolName: string;
  /** Raw arguments as the framework received them (before schema validation). */
  args: unknown;
  /** Action type the policy matches on; defaults to `toolName`. */
  actionType?: string;
  /** The framework's id for this call (LangChain ToolCall id, MCP request id, ...). */
  toolCallId?: string;
  /** Context the policy can read as `metadata.*` (run name, tags, graph thread/node, ...). */
  metadata?: Record<string, unknown>;
  /** The MCP server the tool belongs to, when known: policies read it as `tool.mcpServer`. */
  mcpServer?: string;
  /**
   * The framework's own context for this call (e.g. LangChain's RunnableConfig), for other adapters'
   * `enrichCall`. Never evaluated, never recorded.
   */
  native?: unknown;
}

/** A call held for human approval. */
export interface HeldCall {
  approvalId: string;
  auditEventId: string;
  /** ISO time at which the approval expires. */
  timeoutAt?: string;
  message?: string;
}

/** Per-call options an adapter (or another adapter's `enrichCall`) can set. */
export interface InterceptOptions {
  /**
   * Idempotency key for the decision: the same key returns the first decision (no second audit
   * record), and a call already executed under this key in this process is not executed again
   * (its first result is returned).
   */
  eventId?: string;
  /**
   * Called when the call is held for approval, before the interceptor waits for the decision
   * (gate semantics). It may throw to suspend the caller instead (e.g. a LangGraph `interrupt()`);
   * when it returns, the interceptor waits for the approval as usual.
   */
  onHold?(held: HeldCall, call: ToolCall): void | Promise<void>;
}

/**
 * The adapter's only door to the gate.
 * `intercept` resolves to the tool's result when the call is allowed and rejects with
 * `AssemblyDeniedError` / `AssemblyTimeoutError` otherwise. It never runs `invoke` for a denied call.
 */
export interface Interceptor {
  intercept<T>(call: ToolCall, invoke: () => T | Promise<T>, options?: InterceptOptions): Promise<T>;
}

/** What an adapter learns about the host application. */
export interface AdapterContext {
  /** Root of the host application (where its package.json / node_modules live). */
  readonly root: string;
  /** `require` resolving from the host application's root (CJS copies of a framework). */
  readonly require: NodeJS.Require;
  /** Resolve a module specifier from the host root; `undefined` when the host does not have it. */
  resolve(specifier: string): string | undefined;
  /** `import()` a module as the host application would (from its root). */
  import<T = unknown>(specifier: string): Promise<T>;
}

/** What an adapter really wrapped, reported back to the user in `AssemblyContext.adapters`. */
export interface HookReport {
  /** Entry points wrapped, e.g. `"@langchain/core/tools#StructuredTool.prototype.call (esm)"`. */
  entryPoints: string[];
  /** Optional note for people, e.g. why an adapter wraps nothing itself. */
  detail?: string;
}

/**
 * A framework integration. Adapters translate a framework's tool call into a `ToolCall` and the
 * gate's answer back into what the framework expects; they hold no governance logic.
 */
export interface FrameworkAdapter {
  /** Unique name, e.g. `"langchain"`. */
  readonly name: string;
  /** Closed semver range of the framework versions this adapter is tested against. */
  readonly supportedVersions: string;
  /**
   * npm package whose installed version (resolved from the host app) must satisfy
   * `supportedVersions`, e.g. `"@langchain/core"`. When set, core checks it before installing.
   */
  readonly targetPackage?: string;
  /** Install rank, lower first. Built-ins have fixed ranks; third-party adapters default to 50. */
  readonly priority?: number;
  /** Is the framework resolvable from the host app (not from our package)? */
  isAvailable(context: AdapterContext): boolean | Promise<boolean>;
  /** Install hooks; must be idempotent and must not leave anything installed when it throws. */
  registerHooks(interceptor: Interceptor, context: AdapterContext): HookReport | Promise<HookReport>;
  /** Remove every hook this adapter installed. */
  unregisterHooks(): void | Promise<void>;
  /**
   * Optional: add context to calls routed by any installed adapter (e.g. LangGraph adds thread id
   * and node to calls the LangChain patch intercepts, reading `call.native`). Runs before the
   * decision, on the hot path: return quickly when the call is not yours. May mutate
   * `call.metadata` and return options for this call.
   */
  enrichCall?(call: ToolCall): InterceptOptions | undefined;
  /**
   * Optional: govern a framework module the app hands over with `manuallyInstrument()`, for
   * bundled apps whose bundler inlined the framework (module hooks and `context.import()` never
   * see it). Called only on an installed adapter, after `registerHooks`: patch with the interceptor
   * received there. Return what was wrapped, or `undefined` when the namespace is not yours (look
   * at its exports, e.g. a `StructuredTool` class; `specifier` is the app's hint and may be absent).
   * Must be idempotent (`wrapMethod` is), and `unregisterHooks` must undo it too. Only shared,
   * mutable targets can be patched this way (class prototypes); an ESM namespace's function
   * exports cannot be replaced.
   */
  instrumentModule?(
    specifier: string | undefined,
    namespace: Readonly<Record<string, unknown>>,
  ): HookReport | undefined | Promise<HookReport | undefined>;
}

/** Default-export shape of a third-party adapter module: the adapter or a factory for it. */
export type AdapterModuleExport = FrameworkAdapter | (() => FrameworkAdapter | Promise<FrameworkAdapter>);
