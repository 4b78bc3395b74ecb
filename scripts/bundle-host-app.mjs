// Test helper for adapters' bundled-app tests: bundles a fixture app with esbuild so the framework is
// inlined, while @aa/core and the adapter stay external and resolvable (linked into a temp node_modules),
// as in a real bundled deployment. `build` is esbuild's, passed in by the adapter that depends on it.
import { mkdirSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CORE_DIR = new URL("../packages/core", import.meta.url).pathname;

export async function bundleHostApp({ build, app, packageName, packageDir, prefix }) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(dir, "node_modules", "@aa"), { recursive: true });
  symlinkSync(CORE_DIR, join(dir, "node_modules", "@aa", "core"), "dir");
  symlinkSync(packageDir, join(dir, "node_modules", ...packageName.split("/")), "dir");
  const bundle = join(dir, "app.bundle.mjs");
  const result = await build({
    entryPoints: [app],
    outfile: bundle,
    bundle: true,
    platform: "node",
    format: "esm",
    external: ["@aa/core", packageName],
    // CommonJS dependencies inside the bundle require() Node built-ins.
    banner: {
      js: 'import { createRequire as aaCreateRequire } from "node:module"; const require = aaCreateRequire(import.meta.url);',
    },
    logLevel: "silent",
    metafile: true,
  });
  return {
    dir,
    bundle,
    /** Every source file inlined into the bundle. */
    inputs: Object.keys(result.metafile.inputs),
    /** What the bundle still imports at run time. */
    externals: Object.values(result.metafile.outputs).flatMap((output) =>
      output.imports.filter((entry) => entry.external).map((entry) => entry.path),
    ),
  };
}
