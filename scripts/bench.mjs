#!/usr/bin/env node
// Runs every package benchmark (`packages/*/bench/*.bench.mjs`, `examples/*/bench/*.bench.mjs`) in
// its own process, one after the other, so one benchmark's heap or hooks never skew the next.
// Each benchmark prints its own table; figures are ratios measured within one run.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const only = process.argv[2];
const files = [];
for (const group of ["packages", "examples"]) {
  for (const pkg of readdirSync(join(root, group))) {
    const dir = join(root, group, pkg, "bench");
    if (!existsSync(dir)) continue;
    for (const f of readdirSync(dir).sort()) {
      if (f.endsWith(".bench.mjs") && (!only || f.includes(only) || pkg.includes(only)))
        files.push(join(dir, f));
    }
  }
}
console.log(`node ${process.version} on ${process.platform}/${process.arch}; ${files.length} benchmark(s)\n`);
let failed = 0;
for (const file of files) {
  console.log(`=== ${file.slice(root.length)}`);
  const r = spawnSync(process.execPath, ["--expose-gc", file], {
    stdio: "inherit",
    cwd: join(file, "..", ".."),
  });
  if (r.status !== 0) failed++;
  console.log();
}
process.exit(failed ? 1 : 0);
