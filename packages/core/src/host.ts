/**
 * The host application as adapters see it: module resolution from the host's root, never from
 * our own package (a framework installed by the app is the one to patch).
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve as resolvePath } from "node:path";
import { pathToFileURL } from "node:url";
import { resolve as resolveEsm } from "import-meta-resolve";
import type { AdapterContext } from "./types.js";

/** Build the adapter context for a host rooted at `root`. */
export function createHostContext(root: string): AdapterContext {
  const absoluteRoot = resolvePath(root);
  // A file (need not exist) inside the root anchors both resolvers there.
  const anchor = join(absoluteRoot, "__agent_assembly_host__.js");
  const hostRequire = createRequire(anchor);
  const anchorUrl = pathToFileURL(anchor).href;
  return {
    root: absoluteRoot,
    require: hostRequire,
    resolve(specifier) {
      // Only what the host really has installed: resolution alone would also follow NODE_PATH
      // (set, for one, by pnpm's node shim), which can point at packages the app does not have.
      const packageName = packageNameOf(specifier);
      if (packageName !== undefined && findPackageDir(absoluteRoot, packageName) === undefined)
        return undefined;
      try {
        return hostRequire.resolve(specifier);
      } catch {
        try {
          return new URL(resolveEsm(specifier, anchorUrl)).pathname;
        } catch {
          return undefined;
        }
      }
    },
    async import<T>(specifier: string) {
      return (await import(resolveEsm(specifier, anchorUrl))) as T;
    },
  };
}

/** `@scope/name` or `name` of a bare specifier; undefined for builtins and paths. */
export function packageNameOf(specifier: string): string | undefined {
  if (specifier.startsWith("node:") || specifier.startsWith(".") || specifier.startsWith("/"))
    return undefined;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/**
 * The directory of `packageName` as the host would load it, found by walking `node_modules`
 * upwards from the root (works whatever the package's `exports` map allows).
 */
export function findPackageDir(root: string, packageName: string): string | undefined {
  let dir = resolvePath(root);
  for (;;) {
    const candidate = join(dir, "node_modules", packageName, "package.json");
    if (existsSync(candidate)) return dirname(candidate);
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Parsed package.json, or undefined when missing or unreadable. */
export function readPackageJson(dir: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    return parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The version of `packageName` installed for the host, if any. */
export function installedVersion(root: string, packageName: string): string | undefined {
  const dir = findPackageDir(root, packageName);
  const version = dir ? readPackageJson(dir)?.version : undefined;
  return typeof version === "string" ? version : undefined;
}
