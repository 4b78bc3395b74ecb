/**
 * Adapter discovery: the npm analogue of Python entry points. A package declares an adapter with
 *
 *   "agentAssembly": { "adapter": "./dist/adapter.js" }
 *
 * in its package.json; the module default-exports a FrameworkAdapter or a function returning one.
 * Only the host app's own dependencies are considered, resolved from the host's root.
 */
import { realpathSync } from "node:fs";
import { join, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { ConfigurationError } from "./errors.js";
import { findPackageDir, readPackageJson } from "./host.js";
import type { AdapterModuleExport, FrameworkAdapter } from "./types.js";

/** The package.json field that declares an adapter. */
export const DISCOVERY_FIELD = "agentAssembly";

export interface DiscoveredAdapter {
  adapter: FrameworkAdapter;
  /** Package that declared it. */
  packageName: string;
}

/** Names of the host's dependencies (dependencies, optional and dev), from its package.json. */
export function hostDependencyNames(root: string): string[] {
  return dependencyNames(readPackageJson(root), ["dependencies", "optionalDependencies", "devDependencies"]);
}

function dependencyNames(pkg: Record<string, unknown> | undefined, fields: string[]): string[] {
  if (!pkg) return [];
  const names = new Set<string>();
  for (const field of fields) {
    const deps = pkg[field];
    if (deps && typeof deps === "object") for (const name of Object.keys(deps)) names.add(name);
  }
  return [...names].sort();
}

/**
 * Load every adapter declared by the host's installed dependencies, and by the dependencies of
 * those adapter packages (an adapter may bring the adapters it builds on: installing
 * `@aa/adapter-langgraph` alone also brings `@aa/adapter-langchain`).
 */
export async function discoverAdapters(root: string): Promise<DiscoveredAdapter[]> {
  const found: DiscoveredAdapter[] = [];
  const seen = new Set<string>();
  const visit = async (name: string, fromDir: string): Promise<void> => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = findPackageDir(fromDir, name);
    if (!dir) return;
    const pkg = readPackageJson(dir);
    const declaration = pkg?.[DISCOVERY_FIELD];
    if (declaration === undefined) return;
    found.push({ adapter: await loadDeclaredAdapter(name, dir, declaration), packageName: name });
    // From the package's real location: package managers that link (pnpm) keep its own
    // dependencies beside its real directory, not beside the link.
    const realDir = realpathSync(dir);
    for (const dependency of dependencyNames(pkg, ["dependencies"])) await visit(dependency, realDir);
  };
  for (const name of hostDependencyNames(root)) await visit(name, root);
  return found;
}

async function loadDeclaredAdapter(
  packageName: string,
  dir: string,
  declaration: unknown,
): Promise<FrameworkAdapter> {
  const entry = (declaration as { adapter?: unknown } | null)?.adapter;
  if (typeof entry !== "string" || !entry.startsWith("./")) {
    throw new ConfigurationError(
      "adapters",
      `package "${packageName}" declares "${DISCOVERY_FIELD}" without a valid "adapter" path; expected e.g. { "adapter": "./dist/adapter.js" }`,
      { packageName },
    );
  }
  const file = resolvePath(join(dir, entry));
  if (!file.startsWith(resolvePath(dir))) {
    throw new ConfigurationError(
      "adapters",
      `package "${packageName}" points its adapter outside the package: ${entry}`,
      {
        packageName,
      },
    );
  }
  let moduleExports: { default?: AdapterModuleExport };
  try {
    moduleExports = (await import(pathToFileURL(file).href)) as { default?: AdapterModuleExport };
  } catch (cause) {
    throw new ConfigurationError(
      "adapters",
      `could not load the adapter of "${packageName}" from ${entry}: ${String(cause)}`,
      {
        packageName,
      },
      { cause },
    );
  }
  const exported = moduleExports.default;
  const adapter = typeof exported === "function" ? await exported() : exported;
  assertFrameworkAdapter(adapter, `the default export of "${packageName}" (${entry})`);
  return adapter;
}

/** Throw a ConfigurationError naming what is missing when `value` is not a FrameworkAdapter. */
export function assertFrameworkAdapter(value: unknown, where: string): asserts value is FrameworkAdapter {
  const candidate = value as Partial<FrameworkAdapter> | null | undefined;
  const missing: string[] = [];
  if (!candidate || typeof candidate !== "object") {
    throw new ConfigurationError("adapters", `${where} is not a FrameworkAdapter object`);
  }
  if (typeof candidate.name !== "string" || candidate.name === "") missing.push("name (string)");
  if (typeof candidate.supportedVersions !== "string") missing.push("supportedVersions (semver range)");
  if (typeof candidate.isAvailable !== "function") missing.push("isAvailable()");
  if (typeof candidate.registerHooks !== "function") missing.push("registerHooks()");
  if (typeof candidate.unregisterHooks !== "function") missing.push("unregisterHooks()");
  if (missing.length > 0) {
    throw new ConfigurationError(
      "adapters",
      `${where} is not a valid FrameworkAdapter: missing ${missing.join(", ")}`,
    );
  }
}
