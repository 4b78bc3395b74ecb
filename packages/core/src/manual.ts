/**
 * `manuallyInstrument()`: for bundled apps. A bundler inlines `@langchain/core` (or another
 * framework) into the app's bundle, so neither module hooks nor an adapter's
 * `context.import("@langchain/core/tools")` ever reach the copy the app runs. The app hands that
 * copy over instead, and every installed adapter implementing `instrumentModule` gets to patch it
 * with the same code and interceptor it uses for an installed package.
 */
import { getAssembly } from "./current.js";
import { AssemblyError, ConfigurationError } from "./errors.js";
import type { FrameworkAdapter } from "./types.js";

/** What `manuallyInstrument` wrapped, per adapter. */
export interface ManualInstrumentation {
  specifier?: string;
  adapters: { name: string; entryPoints: string[]; detail?: string }[];
}

// Installed adapters that implement instrumentModule, shared by every copy of @aa/core.
const ADAPTERS_KEY = Symbol.for("agent-assembly.instrumentable-adapters");
const shared = globalThis as typeof globalThis & { [ADAPTERS_KEY]?: Set<FrameworkAdapter> };

function instrumentableAdapters(): Set<FrameworkAdapter> {
  shared[ADAPTERS_KEY] ??= new Set();
  return shared[ADAPTERS_KEY];
}

/**
 * Note an installed adapter (called by `initAssembly` after its `registerHooks` succeeded); the
 * returned function forgets it again (on shutdown). Adapters without `instrumentModule` are ignored.
 */
export function trackInstalledAdapter(adapter: FrameworkAdapter): () => void {
  if (typeof adapter.instrumentModule !== "function") return () => {};
  const adapters = instrumentableAdapters();
  adapters.add(adapter);
  return () => {
    adapters.delete(adapter);
  };
}

/**
 * Hand a framework module the app imported itself (typically bundled in) to the installed
 * adapters, which patch it as they patch the installed package. Call it after `initAssembly()`
 * (or under `--import @aa/core/register`), before the app creates its agents.
 *
 * Fails closed: rejects with `ConfigurationError` when no installed adapter recognises the
 * namespace (its tools would otherwise run ungoverned), and with `AssemblyError`
 * `NOT_INITIALISED` before Agent Assembly is initialised.
 *
 * @example
 * import * as tools from "@langchain/core/tools"; // bundled into the app
 * await initAssembly({ adapters: [createLangChainAdapter()] });
 * await manuallyInstrument(tools, "@langchain/core/tools");
 */
export async function manuallyInstrument(
  moduleNamespace: object,
  specifier?: string,
): Promise<ManualInstrumentation> {
  if (
    moduleNamespace === null ||
    (typeof moduleNamespace !== "object" && typeof moduleNamespace !== "function")
  ) {
    throw new ConfigurationError(
      "moduleNamespace",
      'manuallyInstrument expects a module namespace object, e.g. import * as tools from "@langchain/core/tools"; manuallyInstrument(tools, "@langchain/core/tools")',
      { received: moduleNamespace === null ? "null" : typeof moduleNamespace },
    );
  }
  if (specifier !== undefined && typeof specifier !== "string") {
    throw new ConfigurationError(
      "specifier",
      'the specifier of manuallyInstrument must be a string, e.g. "@langchain/core/tools"',
    );
  }
  const assembly = await getAssembly();
  const result: ManualInstrumentation = { ...(specifier ? { specifier } : {}), adapters: [] };
  const namespace = moduleNamespace as Readonly<Record<string, unknown>>;
  for (const adapter of instrumentableAdapters()) {
    let report: Awaited<ReturnType<NonNullable<FrameworkAdapter["instrumentModule"]>>>;
    try {
      report = await adapter.instrumentModule?.(specifier, namespace);
    } catch (cause) {
      throw new AssemblyError(
        "ADAPTER_INSTALL_FAILED",
        `adapter "${adapter.name}" failed to instrument ${specifier ?? "the module"}: ${(cause as Error)?.message ?? String(cause)}`,
        { adapter: adapter.name, ...(specifier ? { specifier } : {}) },
        { cause },
      );
    }
    if (report) {
      result.adapters.push({
        name: adapter.name,
        entryPoints: [...report.entryPoints],
        ...(typeof report.detail === "string" ? { detail: report.detail } : {}),
      });
    }
  }
  if (result.adapters.length === 0) {
    const installed = assembly.adapters.filter((a) => a.status === "installed").map((a) => a.name);
    const capable = [...instrumentableAdapters()].map((a) => a.name);
    throw new ConfigurationError(
      "moduleNamespace",
      `no installed adapter recognised ${specifier ?? "the module"} passed to manuallyInstrument, so its tool calls would run ungoverned. Installed adapters: ${
        installed.join(", ") || "none"
      }; of those, supporting manuallyInstrument (instrumentModule): ${capable.join(", ") || "none"}`,
      { ...(specifier ? { specifier } : {}), installed, supportingManualInstrumentation: capable },
    );
  }
  return result;
}
