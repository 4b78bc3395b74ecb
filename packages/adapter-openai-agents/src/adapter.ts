/**
 * The OpenAI Agents SDK adapter: governs every function tool an agent exposes by wrapping
 * `Agent.prototype.getAllTools` on each build of `@openai/agents-core` the host can load (the copy
 * its root resolves and the copy `@openai/agents` re-exports). Each function tool it returns is
 * governed once, in place (see `govern-tool.ts`).
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import {
  type AdapterContext,
  AssemblyError,
  type FrameworkAdapter,
  type HookReport,
  type Interceptor,
  type WrapHandle,
  wrapMethod,
} from "@aa/core";
import { type FunctionToolLike, ToolGovernor } from "./govern-tool.js";
import { PATCH_TARGET, REEXPORTING_PACKAGES, TARGET_PACKAGE } from "./patch-targets.js";

/** The adapter's name (fixed rank 4 in core), also its owner tag on the wrappers it installs. */
export const OPENAI_AGENTS_ADAPTER_NAME = "openai-agents";
/** `@openai/agents-core` versions this adapter's tests run against. */
export const OPENAI_AGENTS_SUPPORTED_VERSIONS = ">=0.20.0 <0.21.0";

interface Installation {
  readonly handles: WrapHandle[];
  readonly governor: ToolGovernor;
  readonly report: HookReport;
}

/** One installed copy of `@openai/agents-core`. */
interface CoreCopy {
  readonly dir: string;
  readonly version: string;
  readonly cjsEntry: string;
  readonly esmEntry: string | undefined;
}

/** Create the adapter; `initAssembly({ adapters: [createOpenAIAgentsAdapter()] })`. */
export function createOpenAIAgentsAdapter(): FrameworkAdapter {
  let installation: Installation | undefined;
  return {
    name: OPENAI_AGENTS_ADAPTER_NAME,
    supportedVersions: OPENAI_AGENTS_SUPPORTED_VERSIONS,
    targetPackage: TARGET_PACKAGE,
    priority: 4,

    isAvailable(context: AdapterContext): boolean {
      return [TARGET_PACKAGE, ...REEXPORTING_PACKAGES].some((name) => context.resolve(name) !== undefined);
    },

    async registerHooks(interceptor: Interceptor, context: AdapterContext): Promise<HookReport> {
      if (installation) return installation.report;
      const handles: WrapHandle[] = [];
      const governor = new ToolGovernor(interceptor, OPENAI_AGENTS_ADAPTER_NAME);
      try {
        installation = { handles, governor, report: await install(governor, context, handles) };
        return installation.report;
      } catch (error) {
        for (const handle of handles.reverse()) handle.unwrap();
        governor.restoreAll();
        throw error;
      }
    },

    unregisterHooks(): void {
      const current = installation;
      installation = undefined;
      if (!current) return;
      for (const handle of [...current.handles].reverse()) handle.unwrap();
      current.governor.restoreAll();
    },
  };
}

async function install(
  governor: ToolGovernor,
  context: AdapterContext,
  handles: WrapHandle[],
): Promise<HookReport> {
  const copies = findCoreCopies(context);
  if (copies.length === 0) {
    throw installFailed(
      `found no copy of ${TARGET_PACKAGE} (neither in the application nor under ${REEXPORTING_PACKAGES.join(", ")})`,
    );
  }
  const entryPoints: string[] = [];
  const failures: string[] = [];
  const seenPrototypes = new Set<object>();
  for (const copy of copies) {
    if (!semverInRange(copy.version)) {
      throw installFailed(
        `${TARGET_PACKAGE}@${copy.version} at ${copy.dir} is outside the supported range ${OPENAI_AGENTS_SUPPORTED_VERSIONS}`,
      );
    }
    const builds: [string, () => Promise<unknown>][] = [
      ["cjs", async () => createRequire(copy.cjsEntry)(copy.cjsEntry)],
    ];
    if (copy.esmEntry) {
      const esm = copy.esmEntry;
      builds.unshift(["esm", () => import(pathToFileURL(esm).href)]);
    }
    for (const [build, load] of builds) {
      let prototype: unknown;
      try {
        const loaded = (await load()) as Record<string, { prototype?: unknown } | undefined>;
        prototype = loaded[PATCH_TARGET.exportName]?.prototype;
      } catch (error) {
        failures.push(`${build}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      const method = (prototype as Record<string, unknown> | undefined)?.[PATCH_TARGET.method];
      if (typeof prototype !== "object" || prototype === null || typeof method !== "function") {
        failures.push(
          `${build}: ${copy.dir} has no ${PATCH_TARGET.exportName}.prototype.${PATCH_TARGET.method}`,
        );
        continue;
      }
      if (seenPrototypes.has(prototype)) continue;
      seenPrototypes.add(prototype);
      handles.push(
        wrapMethod(
          prototype as Record<string, (...args: unknown[]) => unknown>,
          PATCH_TARGET.method,
          OPENAI_AGENTS_ADAPTER_NAME,
          (original) => governedGetAllTools(governor, original),
        ),
      );
      entryPoints.push(`${PATCH_TARGET.label} (${build})`);
    }
  }
  if (entryPoints.length === 0) throw installFailed(failures.join("; "));
  return {
    entryPoints,
    detail: "governs function tools (MCP-derived included); hosted tools run remotely and are not gated",
  };
}

/** `getAllTools` as before, with each function tool it returns governed (once per tool object). */
function governedGetAllTools(governor: ToolGovernor, original: (...args: unknown[]) => unknown) {
  return async function governedGetAllTools(this: unknown, ...args: unknown[]): Promise<unknown> {
    const tools = await original.apply(this, args);
    if (Array.isArray(tools)) for (const tool of tools) governor.govern(tool as FunctionToolLike);
    return tools;
  };
}

/**
 * Every distinct copy of `@openai/agents-core` the host can load: the one its root resolves and the
 * ones `@openai/agents` (resolved from the root) depends on. Nothing is imported to find them.
 */
function findCoreCopies(context: AdapterContext): CoreCopy[] {
  const entries = new Set<string>();
  const direct = context.resolve(TARGET_PACKAGE);
  if (direct !== undefined) entries.add(direct);
  for (const name of REEXPORTING_PACKAGES) {
    const entry = context.resolve(name);
    if (entry === undefined) continue;
    try {
      entries.add(createRequire(entry).resolve(TARGET_PACKAGE));
    } catch {
      // That package does not depend on its own copy: nothing more to patch.
    }
  }
  const copies = new Map<string, CoreCopy>();
  for (const entry of entries) {
    const copy = describeCopy(entry);
    if (copy && !copies.has(copy.dir)) copies.set(copy.dir, copy);
  }
  return [...copies.values()];
}

/** The package directory, version and ESM/CJS entries of the copy an entry file belongs to. */
function describeCopy(entry: string): CoreCopy | undefined {
  let dir = dirname(entry);
  for (;;) {
    const manifest = readManifest(dir);
    if (manifest?.name === TARGET_PACKAGE) {
      const root = (
        manifest.exports as Record<string, { import?: unknown; require?: unknown }> | undefined
      )?.["."];
      const esm = typeof root?.import === "string" ? join(dir, root.import) : undefined;
      const cjs = typeof root?.require === "string" ? join(dir, root.require) : entry;
      return { dir, version: String(manifest.version), cjsEntry: cjs, esmEntry: esm };
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

function readManifest(dir: string): Record<string, unknown> | undefined {
  try {
    return JSON.parse(readFileSync(join(dir, "package.json"), "utf8")) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

/** `>=0.20.0 <0.21.0`, checked without a semver dependency (prereleases are outside). */
function semverInRange(version: string): boolean {
  return /^0\.20\.\d+$/.test(version);
}

function installFailed(why: string): AssemblyError {
  return new AssemblyError(
    "ADAPTER_INSTALL_FAILED",
    `the OpenAI Agents adapter cannot install: ${why}; install ${TARGET_PACKAGE} (or @openai/agents) ${OPENAI_AGENTS_SUPPORTED_VERSIONS} in the application, or remove "openai-agents" from the adapters option`,
    { adapter: OPENAI_AGENTS_ADAPTER_NAME },
  );
}

/** The OpenAI Agents adapter (what discovery installs). */
const openAIAgentsAdapter: FrameworkAdapter = createOpenAIAgentsAdapter();
export default openAIAgentsAdapter;
