#!/usr/bin/env node
// Architecture lint, run by `pnpm lint`:
// 1. dependencies point one way: adapters → core → engine → policy; gateway → engine; cli on top;
// 2. every adapter package has the same shape (definition, patch targets as data, translation,
//    README, tests against the real framework, the discovery field, the framework as a peer).
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const packagesDir = join(root, "packages");

/** Which workspace packages each package may depend on. */
const ALLOWED = {
  "@aa/policy": [],
  "@aa/engine": ["@aa/policy"],
  "@aa/core": ["@aa/policy", "@aa/engine"],
  "@aa/gateway": ["@aa/engine", "@aa/policy"],
  "@aa/console": [],
  // Files only (openapi.yaml + fixtures): the gateway's and the remote client's tests read them.
  "@aa/wire-contract": [],
  "@aa/cli": ["@aa/core", "@aa/engine", "@aa/policy", "@aa/gateway", "@aa/console"],
  // HTTP middleware (Express, Fastify, Hono): sets the principal and checks permissions through core.
  "@aa/middleware": ["@aa/core"],
};
const isAdapter = (name) => name.startsWith("@aa/adapter-");
// An adapter talks to core only; it may bring another adapter it builds on (LangGraph → LangChain).
const allowedFor = (name) => (isAdapter(name) ? ["@aa/core", "@aa/adapter-*"] : ALLOWED[name]);
const permits = (allowed, dep) =>
  allowed.some((a) => a === dep || (a.endsWith("*") && dep.startsWith(a.slice(0, -1))));

const ADAPTER_FILES = [
  "src/adapter.ts",
  "src/index.ts",
  "src/patch-targets.ts",
  "src/translate.ts",
  "README.md",
];

function sourceFiles(dir) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).flatMap((entry) => {
    const path = join(dir, entry);
    return statSync(path).isDirectory() ? sourceFiles(path) : path.endsWith(".ts") ? [path] : [];
  });
}

const problems = [];
for (const dir of readdirSync(packagesDir).sort()) {
  const pkgFile = join(packagesDir, dir, "package.json");
  if (!existsSync(pkgFile)) continue;
  const pkg = JSON.parse(readFileSync(pkgFile, "utf8"));
  const allowed = allowedFor(pkg.name);
  if (!allowed) {
    problems.push(
      `${pkg.name}: unknown package; add it to ALLOWED in scripts/check-architecture.mjs with its place in the layers`,
    );
    continue;
  }
  const runtimeDeps = Object.keys({
    ...pkg.dependencies,
    ...pkg.peerDependencies,
    ...pkg.optionalDependencies,
  });
  for (const dep of runtimeDeps.filter((d) => d.startsWith("@aa/"))) {
    if (!permits(allowed, dep))
      problems.push(
        `${pkg.name} depends on ${dep}: dependencies must point down (allowed: ${allowed.join(", ") || "none"})`,
      );
  }
  for (const file of sourceFiles(join(packagesDir, dir, "src"))) {
    const text = readFileSync(file, "utf8");
    for (const match of text.matchAll(/(?:from\s+|import\(\s*)["'](@aa\/[a-z-]+)/g)) {
      const dep = match[1];
      if (dep !== pkg.name && !permits(allowed, dep)) {
        problems.push(
          `${file.slice(root.length)} imports ${dep}: ${pkg.name} may only use ${allowed.join(", ") || "no workspace package"}`,
        );
      }
    }
  }
  if (isAdapter(pkg.name)) {
    for (const file of ADAPTER_FILES) {
      if (!existsSync(join(packagesDir, dir, file)))
        problems.push(`${pkg.name}: missing ${file} (every adapter has the same shape)`);
    }
    const tests = sourceFiles(join(packagesDir, dir, "test")).filter((f) => f.endsWith(".test.ts"));
    if (tests.length === 0) problems.push(`${pkg.name}: no tests under test/`);
    if (pkg.agentAssembly?.adapter !== "./dist/adapter.js") {
      problems.push(
        `${pkg.name}: package.json must declare "agentAssembly": { "adapter": "./dist/adapter.js" }`,
      );
    }
    if (
      !pkg.peerDependencies ||
      Object.keys(pkg.peerDependencies).filter((d) => !d.startsWith("@aa/")).length === 0
    ) {
      problems.push(
        `${pkg.name}: the framework must be a peerDependency (the app's copy is the one governed)`,
      );
    }
    if (!pkg.dependencies?.["@aa/core"]) problems.push(`${pkg.name}: must depend on @aa/core`);
  }
}

if (problems.length > 0) {
  console.error(`architecture check failed:\n  - ${problems.join("\n  - ")}`);
  process.exit(1);
}
console.log("architecture check: dependency direction and adapter shape OK");
