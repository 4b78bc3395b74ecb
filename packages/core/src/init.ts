/**
 * `initAssembly()`: install governance into the host process atomically, and take it out again.
 *
 * Steps, each with its undo: validate options (no side effects) → open the gate → discover
 * adapters → install hooks in priority order → route egress through the proxy (proxy mode) →
 * register the context. If any step fails, the steps
 * already done are undone in reverse and the error is thrown: the process is never half-patched.
 */
import { createHash } from "node:crypto";
import type { PolicyRule } from "@aa/policy";
import semver from "semver";
import { createGovernanceClient, type GovernanceClient } from "./client.js";
import { assertFrameworkAdapter, discoverAdapters } from "./discovery.js";
import { displayProxyUrl, installEgressProxy } from "./egress.js";
import { AssemblyError, ConfigurationError } from "./errors.js";
import { openEmbeddedGate } from "./gate/embedded.js";
import { createHostContext, installedVersion } from "./host.js";
import { BACKSTOP_RANK, GateInterceptor } from "./interceptor.js";
import type { Gate } from "./internal-types.js";
import { trackInstalledAdapter } from "./manual.js";
import type { AssemblyOptions, ResolvedOptions } from "./options.js";
import { resolveOptions } from "./options.js";
import { watchPolicyFile } from "./policy-watch.js";
import { AdapterRegistry, rankOf } from "./registry.js";
import type { AdapterContext, FrameworkAdapter } from "./types.js";

/** How one adapter fared during `initAssembly`. */
export interface AdapterStatus {
  name: string;
  priority: number;
  /** `installed`: hooks in place. `unavailable`: its framework is not installed in the host app. `failed`: could not install (only with failureMode "open"). */
  status: "installed" | "unavailable" | "failed";
  /** Entry points the adapter really wrapped. */
  entryPoints: string[];
  /** Version of the framework found in the host app, when the adapter declares its `targetPackage`. */
  frameworkVersion?: string;
  /** Why it is unavailable or failed, or the adapter's own note when installed. */
  detail?: string;
}

/** A governed process: the governance client plus what was installed, and how to take it out. */
export interface AssemblyContext extends GovernanceClient {
  readonly agent: { id: string; name?: string };
  readonly adapters: readonly AdapterStatus[];
  /** Remove every hook and close the gate. Teardown errors are aggregated into one AssemblyError. */
  shutdown(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

type Undo = { label: string; run: () => void | Promise<void> };

interface ProcessState {
  fingerprint: string;
  context: Promise<AssemblyContext>;
}

// One context per process, shared even between two copies of @aa/core (ESM and CJS).
const STATE_KEY = Symbol.for("agent-assembly.context");
const processState = globalThis as typeof globalThis & { [STATE_KEY]?: ProcessState };

/**
 * Govern every tool call of the host app. Idempotent per process: a second call with compatible
 * options returns the same context; incompatible options throw `ConfigurationError`.
 *
 * @example
 * await using assembly = await initAssembly({ mode: "sdk-only", agent: { id: "release-bot" } });
 */
export async function initAssembly(options: AssemblyOptions = {}): Promise<AssemblyContext> {
  const resolved = resolveOptions(options);
  const fingerprint = fingerprintOf(resolved);
  const existing = processState[STATE_KEY];
  if (existing) {
    if (existing.fingerprint !== fingerprint) {
      throw new ConfigurationError(
        "options",
        "Agent Assembly is already initialised in this process with different options; call shutdown() on the existing context first",
        { existing: JSON.parse(existing.fingerprint), requested: JSON.parse(fingerprint) },
      );
    }
    return existing.context;
  }
  const context = install(resolved);
  processState[STATE_KEY] = { fingerprint, context };
  context.catch(() => {
    if (processState[STATE_KEY]?.context === context) delete processState[STATE_KEY];
  });
  return context;
}

async function install(options: ResolvedOptions): Promise<AssemblyContext> {
  const undo: Undo[] = [];
  try {
    const opened = await openGate(options);
    const { gate, agent } = opened;
    let { policyRules } = opened;
    undo.push({ label: "close the gate", run: () => gate.close() });
    if (options.watchPolicyFile !== undefined && gate.setPolicy !== undefined) {
      const setPolicy = gate.setPolicy.bind(gate);
      const watcher = watchPolicyFile({
        file: options.watchPolicyFile,
        initial: options.policy!,
        apply: setPolicy,
      });
      undo.push({ label: "stop watching the policy file", run: () => watcher.close() });
      policyRules = () => watcher.current().policies;
    }

    const host = createHostContext(options.root);
    const registry = await buildRegistry(options, host);

    const interceptor = new GateInterceptor({
      gate,
      agent,
      enforcementMode: options.enforcementMode,
      failureMode: options.failureMode,
    });
    const statuses: AdapterStatus[] = [];
    const installed: FrameworkAdapter[] = [];
    for (const adapter of registry.ordered()) {
      const status = await installAdapter(adapter, interceptor, host, options, undo);
      statuses.push(status);
      if (status.status === "installed") {
        installed.push(adapter);
        interceptor.setEnrichers(installed);
      }
    }
    const backstops = installed.filter((a) => rankOf(a) >= BACKSTOP_RANK).length;
    interceptor.setNestingDetection(backstops > 0 && backstops < installed.length);

    if (options.proxyUrl !== undefined) {
      // The network layer goes last: nothing can fail after it but the context itself.
      const { undo: uninstall } = installEgressProxy(options.proxyUrl);
      undo.push({ label: "restore the fetch dispatcher and the proxy variables", run: uninstall });
    }

    const client = createGovernanceClient({
      gate,
      agent,
      enforcementMode: options.enforcementMode,
      policyRules,
    });
    let shutdownPromise: Promise<void> | undefined;
    const shutdown = () => {
      shutdownPromise ??= teardown(undo);
      return shutdownPromise;
    };
    return Object.freeze({
      ...client,
      agent,
      adapters: Object.freeze(statuses.map((s) => Object.freeze(s))),
      shutdown,
      [Symbol.asyncDispose]: shutdown,
    });
  } catch (error) {
    const teardownError = await teardown(undo).then(
      () => undefined,
      (e: unknown) => e,
    );
    if (teardownError && error instanceof Error) {
      (error as Error & { rollbackError?: unknown }).rollbackError = teardownError;
    }
    throw error;
  }
}

/**
 * The embedded engine, or the shared gateway when one is configured. With a gateway, the agent is
 * the one its API key names; a configured agent id that differs is a configuration error (the
 * process would believe it acts as one agent while the gateway records another).
 */
async function openGate(options: ResolvedOptions): Promise<{
  gate: Gate;
  agent: { id: string; name?: string };
  policyRules: () => PolicyRule[] | Promise<PolicyRule[]>;
}> {
  if (options.gateway === undefined) {
    const policy = options.policy!;
    const agent = options.agent!;
    const gate = await openEmbeddedGate({ policy, store: options.store });
    return { gate, agent, policyRules: () => policy.policies };
  }
  const { openRemoteGate } = await import("./gate/remote.js");
  const gate = await openRemoteGate({
    url: options.gateway.url,
    apiKey: options.gateway.apiKey,
    ...(options.gateway.retryDelaysMs ? { retryDelaysMs: options.gateway.retryDelaysMs } : {}),
    ...(options.gateway.requestTimeoutMs ? { requestTimeoutMs: options.gateway.requestTimeoutMs } : {}),
  });
  const keyAgent = gate.identity.agentId;
  const configured = options.agent;
  if (configured && keyAgent !== undefined && configured.id !== keyAgent) {
    await gate.close();
    throw new ConfigurationError(
      "agent",
      `agent id "${configured.id}" does not match the gateway API key, which belongs to agent "${keyAgent}"; remove the agent option / AA_AGENT_ID, or use that agent's key`,
      { configured: configured.id, keyAgent },
    );
  }
  const id = keyAgent ?? configured?.id;
  if (id === undefined) {
    await gate.close();
    throw new ConfigurationError(
      "apiKey",
      `the gateway API key is a ${gate.identity.role} key, not an agent key; governing tool calls needs an agent key (aa keys create --kind agent), or name the agent with agent: { id }`,
      { role: gate.identity.role },
    );
  }
  const agent = configured?.name === undefined ? { id } : { id, name: configured.name };
  const policyRules = async (): Promise<PolicyRule[]> => {
    const { policy } = await gate.policies();
    const rules = (policy as { policies?: unknown }).policies;
    return Array.isArray(rules) ? (rules as PolicyRule[]) : [];
  };
  return { gate, agent, policyRules };
}

async function buildRegistry(options: ResolvedOptions, host: AdapterContext): Promise<AdapterRegistry> {
  const registry = new AdapterRegistry();
  const needsDiscovery = options.adapters === "auto" || options.adapters.some((a) => typeof a === "string");
  const discovered = needsDiscovery ? await discoverAdapters(host.root) : [];
  if (options.adapters === "auto") {
    for (const { adapter } of discovered) registry.register(adapter);
    return registry;
  }
  for (const [index, entry] of options.adapters.entries()) {
    if (typeof entry === "string") {
      const match = discovered.find((d) => d.adapter.name === entry);
      if (!match) {
        throw new ConfigurationError(
          "adapters",
          `adapter "${entry}" was not found among the host's installed adapter packages (found: ${
            discovered.map((d) => d.adapter.name).join(", ") || "none"
          }); install it, e.g. npm install @aa/adapter-${entry}`,
          { name: entry },
        );
      }
      registry.register(match.adapter);
    } else {
      assertFrameworkAdapter(entry, `adapters[${index}]`);
      registry.register(entry);
    }
  }
  return registry;
}

async function installAdapter(
  adapter: FrameworkAdapter,
  interceptor: GateInterceptor,
  host: AdapterContext,
  options: ResolvedOptions,
  undo: Undo[],
): Promise<AdapterStatus> {
  const base = { name: adapter.name, priority: rankOf(adapter), entryPoints: [] as string[] };
  const available = await adapter.isAvailable(host);
  if (!available)
    return { ...base, status: "unavailable", detail: "framework not installed in the host app" };

  const frameworkVersion = adapter.targetPackage
    ? installedVersion(host.root, adapter.targetPackage)
    : undefined;
  if (
    adapter.targetPackage &&
    frameworkVersion &&
    !semver.satisfies(frameworkVersion, adapter.supportedVersions)
  ) {
    const detail = `${adapter.targetPackage}@${frameworkVersion} is outside the adapter's supported range ${adapter.supportedVersions}`;
    if (options.failureMode === "open") return { ...base, status: "failed", frameworkVersion, detail };
    throw new ConfigurationError(
      "adapters",
      `cannot govern ${adapter.name}: ${detail}. Install a supported version, or exclude the adapter with adapters: [...]`,
      { adapter: adapter.name, frameworkVersion, supportedVersions: adapter.supportedVersions },
    );
  }

  // Registered before installing so a partial install is still undone if registerHooks throws.
  undo.push({ label: `unregister ${adapter.name}`, run: () => adapter.unregisterHooks() });
  try {
    const report = await adapter.registerHooks(interceptor.forRank(rankOf(adapter)), host);
    const forget = trackInstalledAdapter(adapter);
    undo.push({ label: `forget ${adapter.name} for manuallyInstrument`, run: forget });
    return {
      ...base,
      status: "installed",
      entryPoints: [...(report?.entryPoints ?? [])],
      ...(frameworkVersion ? { frameworkVersion } : {}),
      ...(typeof report?.detail === "string" ? { detail: report.detail } : {}),
    };
  } catch (cause) {
    if (options.failureMode === "open") {
      const entry = undo.pop();
      await safelyRun(entry);
      return {
        ...base,
        status: "failed",
        detail: String(cause),
        ...(frameworkVersion ? { frameworkVersion } : {}),
      };
    }
    throw new AssemblyError(
      "ADAPTER_INSTALL_FAILED",
      `adapter "${adapter.name}" failed to install its hooks: ${(cause as Error)?.message ?? String(cause)}; every hook installed so far was removed`,
      { adapter: adapter.name },
      { cause },
    );
  }
}

async function safelyRun(entry: Undo | undefined): Promise<unknown> {
  try {
    await entry?.run();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Run every undo step in reverse, whatever fails; throw one AssemblyError listing the failures. */
async function teardown(undo: Undo[]): Promise<void> {
  const failures: { step: string; error: unknown }[] = [];
  while (undo.length > 0) {
    const entry = undo.pop()!;
    const error = await safelyRun(entry);
    if (error !== undefined) failures.push({ step: entry.label, error });
  }
  const state = processState[STATE_KEY];
  if (state) delete processState[STATE_KEY];
  if (failures.length > 0) {
    throw new AssemblyError(
      "SHUTDOWN_FAILED",
      `Agent Assembly shutdown had ${failures.length} failure(s): ${failures
        .map((f) => `${f.step}: ${(f.error as Error)?.message ?? String(f.error)}`)
        .join("; ")}`,
      {
        failures: failures.map((f) => ({
          step: f.step,
          message: (f.error as Error)?.message ?? String(f.error),
        })),
      },
    );
  }
}

function fingerprintOf(options: ResolvedOptions): string {
  return JSON.stringify({
    mode: options.mode,
    // Credentials never go into the fingerprint (it is shown in error details): a hash tells them apart.
    proxy: options.proxyUrl && {
      url: displayProxyUrl(options.proxyUrl),
      credentials: createHash("sha256").update(options.proxyUrl).digest("hex").slice(0, 16),
    },
    enforcementMode: options.enforcementMode,
    agent: options.agent,
    policySource: options.policySource,
    // A watched policy changes under a running process: the file, not its content, identifies it.
    policy: options.watchPolicyFile === undefined ? options.policy : undefined,
    watchPolicy: options.watchPolicyFile !== undefined,
    store: options.store,
    // The key itself never goes into the fingerprint (it is shown in error details).
    gateway: options.gateway && {
      url: options.gateway.url,
      apiKey: createHash("sha256").update(options.gateway.apiKey).digest("hex").slice(0, 16),
      retryDelaysMs: options.gateway.retryDelaysMs,
      requestTimeoutMs: options.gateway.requestTimeoutMs,
    },
    adapters:
      options.adapters === "auto"
        ? "auto"
        : options.adapters.map((a) => (typeof a === "string" ? a : a.name)),
    root: options.root,
    failureMode: options.failureMode,
  });
}
