/**
 * Adapter register entries: an adapter package whose framework can only be governed through a
 * module loader hook (e.g. the Vercel AI adapter: an ES module's exports cannot be changed after
 * it is loaded) declares the module that registers it,
 *
 *   "agentAssembly": { "adapter": "./dist/adapter.js", "register": "./dist/register.js" }
 *
 * and `@aa/core/register` imports it before the app's own modules load. Only package.json files are
 * read to find them (no adapter module is loaded before every hook is in place).
 */
import { realpathSync } from "node:fs";
import { join, resolve as resolvePath, sep } from "node:path";
import { pathToFileURL } from "node:url";
import { DISCOVERY_FIELD, hostDependencyNames } from "./discovery.js";
import { ConfigurationError } from "./errors.js";
import { findPackageDir, readPackageJson } from "./host.js";

/** One declared register entry. */
export interface AdapterRegisterEntry {
  packageName: string;
  /** Absolute path of the module to import. */
  file: string;
}

/**
 * The register entries declared by the host's adapter packages (and the adapter packages they
 * depend on, as `discoverAdapters` walks them), in discovery order.
 */
export function findAdapterRegisterEntries(root: string): AdapterRegisterEntry[] {
  const found: AdapterRegisterEntry[] = [];
  const seen = new Set<string>();
  const visit = (name: string, fromDir: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = findPackageDir(fromDir, name);
    if (!dir) return;
    const pkg = readPackageJson(dir);
    const declaration = pkg?.[DISCOVERY_FIELD] as { register?: unknown } | undefined;
    if (declaration === undefined || declaration === null || typeof declaration !== "object") return;
    if (declaration.register !== undefined) {
      found.push({ packageName: name, file: registerFile(name, dir, declaration.register) });
    }
    const realDir = realpathSync(dir);
    const dependencies = pkg?.dependencies;
    if (dependencies && typeof dependencies === "object") {
      for (const dependency of Object.keys(dependencies).sort()) visit(dependency, realDir);
    }
  };
  for (const name of hostDependencyNames(root)) visit(name, root);
  return found;
}

function registerFile(packageName: string, dir: string, entry: unknown): string {
  if (typeof entry !== "string" || !entry.startsWith("./")) {
    throw new ConfigurationError(
      "adapters",
      `package "${packageName}" declares "${DISCOVERY_FIELD}.register" without a valid path; expected e.g. "./dist/register.js"`,
      { packageName },
    );
  }
  const base = resolvePath(dir);
  const file = resolvePath(join(dir, entry));
  if (!file.startsWith(base + sep)) {
    throw new ConfigurationError(
      "adapters",
      `package "${packageName}" points its register entry outside the package: ${entry}`,
      { packageName },
    );
  }
  return file;
}

/** Import each register entry in order; a failure is a `ConfigurationError` naming the package. */
export async function importAdapterRegisterEntries(entries: readonly AdapterRegisterEntry[]): Promise<void> {
  for (const { packageName, file } of entries) {
    try {
      await import(pathToFileURL(file).href);
    } catch (cause) {
      throw new ConfigurationError(
        "adapters",
        `could not run the register entry of "${packageName}" (${file}): ${(cause as Error)?.message ?? String(cause)}`,
        { packageName, file },
        { cause },
      );
    }
  }
}
