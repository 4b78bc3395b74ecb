#!/usr/bin/env node
// Adapter structure test, on the built packages (run by `pnpm test` after the build):
// every adapter is registered with its documented rank, declares the framework it patches as a
// peer, and declares a closed semver range (an upper bound in every alternative), because a range
// must be exactly what its tests run.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const root = new URL("..", import.meta.url).pathname;
const fromCore = createRequire(join(root, "packages/core/package.json"));
const semver = fromCore("semver");
const { BUILT_IN_RANKS, rankOf } = await import(
  pathToFileURL(join(root, "packages/core/dist/index.js")).href
);

/** Closed: every `||` alternative has an upper bound (`<`, `<=`, or an exact version). */
function isClosed(range) {
  const parsed = new semver.Range(range);
  return parsed.set.every((comparators) =>
    comparators.some((c) => c.operator === "<" || c.operator === "<=" || c.operator === ""),
  );
}

const problems = [];
const rows = [];
for (const dir of readdirSync(join(root, "packages"))
  .filter((d) => d.startsWith("adapter-"))
  .sort()) {
  const pkgDir = join(root, "packages", dir);
  const pkg = JSON.parse(readFileSync(join(pkgDir, "package.json"), "utf8"));
  const entry = join(pkgDir, pkg.agentAssembly?.adapter ?? "dist/adapter.js");
  if (!existsSync(entry)) {
    problems.push(`${pkg.name}: ${entry} is not built`);
    continue;
  }
  const exported = (await import(pathToFileURL(entry).href)).default;
  const adapter = typeof exported === "function" ? await exported() : exported;
  const documented = BUILT_IN_RANKS[adapter.name];
  if (documented === undefined)
    problems.push(
      `${pkg.name}: adapter name "${adapter.name}" has no documented rank in core's BUILT_IN_RANKS`,
    );
  else if (rankOf(adapter) !== documented)
    problems.push(`${pkg.name}: rank ${rankOf(adapter)} differs from the documented ${documented}`);
  if (adapter.priority !== undefined && adapter.priority !== documented) {
    problems.push(`${pkg.name}: declares priority ${adapter.priority}, documented rank is ${documented}`);
  }
  if (typeof adapter.supportedVersions !== "string" || !semver.validRange(adapter.supportedVersions)) {
    problems.push(
      `${pkg.name}: supportedVersions ${JSON.stringify(adapter.supportedVersions)} is not a semver range`,
    );
  } else if (!isClosed(adapter.supportedVersions)) {
    problems.push(
      `${pkg.name}: supportedVersions ${adapter.supportedVersions} is open-ended; declare the upper bound your tests reach`,
    );
  }
  if (!adapter.targetPackage || !pkg.peerDependencies?.[adapter.targetPackage]) {
    const peers = Object.keys(pkg.peerDependencies ?? {});
    // An adapter may target a package its declared peer brings (OpenAI Agents: agents-core via @openai/agents).
    if (!adapter.targetPackage || peers.length === 0)
      problems.push(
        `${pkg.name}: targetPackage ${adapter.targetPackage} must be declared and a peer dependency`,
      );
  }
  rows.push({
    package: pkg.name,
    adapter: adapter.name,
    rank: rankOf(adapter),
    supportedVersions: adapter.supportedVersions,
    targetPackage: adapter.targetPackage,
  });
}
console.table(rows);
if (problems.length > 0) {
  console.error(`adapter structure check failed:\n  - ${problems.join("\n  - ")}`);
  process.exit(1);
}
console.log(`adapter structure check: ${rows.length} adapters with documented ranks and closed ranges`);
