#!/usr/bin/env node
/**
 * Version matrix of the framework adapters: proves each adapter's declared `supportedVersions`.
 *
 * For every adapter it reads the declared range and `targetPackage` from the built adapter
 * (`dist/adapter.js`), picks the lowest and the highest published patch of every minor inside that
 * range, installs each into a fresh temporary host app (pnpm, bounded by a timeout, hard-linked from
 * the pnpm store on repeats) and runs the adapter's `test/matrix` vitest suite against it with
 * `AA_MATRIX_HOST=<host root>`. Prints a table and exits non-zero when any version in a declared
 * range fails, so a declared range is exactly what the tests run.
 *
 * The published versions are a pinned snapshot (below), not live registry metadata, so a new upstream
 * release cannot change (or break) CI on its own; `--registry` compares the snapshot with the registry
 * and tests what the registry lists instead. Live lookups are limited to the metadata of exact,
 * immutable releases (peer ranges, dependencies) and which langgraph-checkpoint a fresh LangGraph
 * install brings (the install itself resolves it the same way).
 *
 * Usage: node scripts/version-matrix.mjs [--only langchain|langgraph] [--jobs N] [--registry] [--keep]
 */
import { execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs, promisify, stripVTControlCharacters } from "node:util";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
// semver is @aa/core's own dependency (core checks ranges with it): the same semantics here.
const semver = createRequire(join(ROOT, "packages", "core", "package.json"))("semver");
const VITEST = join(ROOT, "node_modules", "vitest", "vitest.mjs");
const INSTALL_TIMEOUT_MS = 180_000;
/** The workspace's own package manager, so the host installs share its store. */
const PNPM = "pnpm@10.34.8";
const TEST_TIMEOUT_MS = 180_000;
/** zod for the host app: every @langchain/core 1.x accepts zod 4 (1.4 requires ^4.6.6). */
const ZOD_SPEC = "zod@^4.6.6";

/** Published 1.x releases (no pre-releases), snapshot of the npm registry on 2026-11-22. */
const PUBLISHED = {
  "@langchain/core": [
    "1.0.0",
    "1.0.1",
    "1.0.2",
    "1.0.3",
    "1.0.4",
    "1.0.5",
    "1.0.6",
    ...range("1.1.", 0, 13),
    ...range("1.1.", 15, 49),
    ...range("1.2.", 0, 14),
    "1.2.17",
    "1.2.18",
    "1.3.1",
    "1.3.2",
    "1.3.4",
    "1.3.5",
    "1.4.0",
  ],
  "@langchain/langgraph": [
    ...range("1.0.", 0, 7),
    "1.0.12",
    "1.0.13",
    "1.0.14",
    "1.0.15",
    ...range("1.1.", 0, 5),
    ...range("1.2.", 0, 9),
    ...range("1.3.", 0, 7),
    "1.4.0",
    "1.4.1",
    "1.4.2",
    ...range("1.4.", 4, 18),
    "1.5.0",
    "1.5.3",
    "1.7.0",
    "1.7.1",
    "1.7.3",
  ],
};

/**
 * The adapters under test. `companions(version, declared, edge)` lists what else the host app
 * installs next to the target package at `version` (`edge`: the lowest or the highest of its minor).
 */
const ADAPTERS = [
  {
    name: "langchain",
    dir: join(ROOT, "packages", "adapter-langchain"),
    companions: async () => [],
  },
  {
    name: "langgraph",
    dir: join(ROOT, "packages", "adapter-langgraph"),
    // LangGraph runs on the host's @langchain/core, governed by the LangChain adapter: the lowest
    // release of each LangGraph minor gets the OLDEST core it installs with, the highest release the
    // NEWEST, both inside the LangChain adapter's range. "Installs with" = LangGraph's own peer range
    // and that of the langgraph-checkpoint a fresh install brings (which can ask for a newer core
    // than LangGraph's peer range says: @langchain/langgraph@1.0.0 wants core ^1.0.1 but the newest
    // langgraph-checkpoint ^1.0.0 wants ^1.1.48 and fails to load on older cores).
    companions: async (version, declared, edge) => {
      const peers = [await peerRange("@langchain/langgraph", version, "@langchain/core")];
      const checkpointRange = (await registryJson([`@langchain/langgraph@${version}`, "dependencies"]))?.[
        "@langchain/langgraph-checkpoint"
      ];
      if (typeof checkpointRange === "string") {
        const checkpoint = semver.maxSatisfying(
          await registryJson(["@langchain/langgraph-checkpoint", "versions"]),
          checkpointRange,
        );
        const checkpointPeer = checkpoint
          ? (await registryJson([`@langchain/langgraph-checkpoint@${checkpoint}`, "peerDependencies"]))?.[
              "@langchain/core"
            ]
          : undefined;
        if (typeof checkpointPeer === "string") peers.push(checkpointPeer);
      }
      const candidates = PUBLISHED["@langchain/core"].filter(
        (v) =>
          semver.satisfies(v, declared.langchain.range) && peers.every((peer) => semver.satisfies(v, peer)),
      );
      const core =
        edge === "lowest" ? semver.minSatisfying(candidates, "*") : semver.maxSatisfying(candidates, "*");
      if (!core) {
        throw new Error(
          `no @langchain/core in the LangChain adapter's range ${declared.langchain.range} satisfies @langchain/langgraph@${version}'s peer ranges ${peers.join(", ")}`,
        );
      }
      return [`@langchain/core@${core}`];
    },
  },
];

function range(prefix, from, to) {
  return Array.from({ length: to - from + 1 }, (_, i) => `${prefix}${from + i}`);
}

const run = promisify(execFile);

/**
 * Environment for npm and pnpm in a host app: the npm_config_* settings pnpm exports to the scripts it
 * runs (`pnpm test`) belong to the workspace, not to the host app.
 */
function packageManagerEnvironment() {
  const kept = new Set(["npm_config_registry", "npm_config_cache", "npm_config_userconfig"]);
  return Object.fromEntries(
    Object.entries(process.env).filter(
      ([key]) =>
        !(key.toLowerCase().startsWith("npm_config_") || key.startsWith("npm_package_")) ||
        kept.has(key.toLowerCase()),
    ),
  );
}

async function npm(args, options = {}) {
  return run("npm", args, { env: packageManagerEnvironment(), maxBuffer: 32 * 1024 * 1024, ...options });
}

const registryAnswers = new Map();

/** `npm view <args> --json`, parsed (`undefined` when the field is absent); asked once per run. */
function registryJson(args) {
  const key = args.join(" ");
  if (!registryAnswers.has(key)) {
    registryAnswers.set(
      key,
      npm(["view", ...args, "--json"], { timeout: 60_000 }).then(({ stdout }) =>
        stdout.trim() === "" ? undefined : JSON.parse(stdout),
      ),
    );
  }
  return registryAnswers.get(key);
}

async function peerRange(packageName, version, peer) {
  const declared = (await registryJson([`${packageName}@${version}`, "peerDependencies"]))?.[peer];
  if (typeof declared !== "string") throw new Error(`${packageName}@${version} declares no peer ${peer}`);
  return declared;
}

/** The declared range and target package of an adapter, read from its build (what users install). */
async function declaredRangeOf(adapter) {
  const dist = join(adapter.dir, "dist", "adapter.js");
  if (!existsSync(dist)) {
    throw new Error(`${dist} is missing: build the adapters first (pnpm build)`);
  }
  const { default: built } = await import(pathToFileURL(dist).href);
  if (typeof built?.targetPackage !== "string" || !semver.validRange(built?.supportedVersions)) {
    throw new Error(`${dist} declares no targetPackage or no valid supportedVersions`);
  }
  return { range: built.supportedVersions, targetPackage: built.targetPackage };
}

/** The lowest and the highest release of every minor inside `declared`, each with its edge. */
function versionsToTest(published, declared) {
  const byMinor = new Map();
  for (const version of published.filter((v) => semver.satisfies(v, declared))) {
    const minor = `${semver.major(version)}.${semver.minor(version)}`;
    byMinor.set(minor, [...(byMinor.get(minor) ?? []), version]);
  }
  return [...byMinor.values()].flatMap((versions) => {
    const sorted = versions.sort(semver.compare);
    const highest = { version: sorted.at(-1), edge: "highest" };
    return sorted.length === 1 ? [highest] : [{ version: sorted[0], edge: "lowest" }, highest];
  });
}

async function registryVersions(packageName) {
  const { stdout } = await npm(["view", packageName, "versions", "--json"], { timeout: 60_000 });
  return JSON.parse(stdout).filter((v) => semver.valid(v) && semver.prerelease(v) === null);
}

/** Install a fresh host app with `specs`; returns its root. */
async function createHost(label, specs) {
  const root = await mkdtemp(join(tmpdir(), `aa-matrix-${label.replace(/[^a-z0-9.]+/gi, "-")}-`));
  await writeFile(
    join(root, "package.json"),
    `${JSON.stringify({ name: "aa-matrix-host", version: "0.0.0", private: true }, null, 2)}\n`,
  );
  // pnpm: its content-addressed store hard-links packages already fetched, so a repeated install
  // takes seconds (npm re-extracts every tarball from its cache into each new host).
  await run(
    "npx",
    [
      "-y",
      PNPM,
      "add",
      "--prefer-offline",
      "--ignore-scripts",
      "--save-exact",
      "--reporter=append-only",
      ...specs,
    ],
    { cwd: root, env: packageManagerEnvironment(), timeout: INSTALL_TIMEOUT_MS, maxBuffer: 32 * 1024 * 1024 },
  );
  return root;
}

/** Run the adapter's matrix suite against the host; resolves with its exit code and output. */
function runMatrixSuite(adapter, hostRoot) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [VITEST, "run", "test/matrix", "--reporter=dot"], {
      cwd: adapter.dir,
      env: { ...process.env, AA_MATRIX_HOST: hostRoot, NO_COLOR: "1", FORCE_COLOR: "0" },
      stdio: ["ignore", "pipe", "pipe"],
      timeout: TEST_TIMEOUT_MS,
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.on("close", (code, signal) =>
      resolve({ code: code ?? 1, signal, output: stripVTControlCharacters(output) }),
    );
  });
}

async function runCase(testCase, keep) {
  const started = Date.now();
  let host;
  try {
    host = await createHost(`${testCase.adapter.name}-${testCase.version}`, testCase.specs);
    const installSeconds = (Date.now() - started) / 1000;
    const result = await runMatrixSuite(testCase.adapter, host);
    const summary = /Tests\s+(.+?)\s*\(/.exec(result.output)?.[1]?.trim() ?? "";
    return {
      ok: result.code === 0,
      summary:
        result.code === 0 ? summary : `${summary || "failed"}${result.signal ? ` (${result.signal})` : ""}`,
      output: result.output,
      seconds: (Date.now() - started) / 1000,
      installSeconds,
    };
  } catch (error) {
    return {
      ok: false,
      summary: "install failed",
      // execFile's message already carries the command and its stderr.
      output: [error?.message, error?.stdout].filter(Boolean).join("\n") || String(error),
      seconds: (Date.now() - started) / 1000,
      installSeconds: (Date.now() - started) / 1000,
    };
  } finally {
    if (host && !keep) await rm(host, { recursive: true, force: true });
  }
}

async function pool(items, jobs, work) {
  const results = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(jobs, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await work(items[index]);
      }
    }),
  );
  return results;
}

function printTable(rows) {
  const header = ["package", "version", "installed with", "result", "install s", "test s"];
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i].length)));
  const line = (cells) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const row of rows) console.log(line(row));
}

async function main() {
  const { values } = parseArgs({
    options: {
      only: { type: "string" },
      jobs: { type: "string", default: "2" },
      registry: { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
    },
  });
  const jobs = Number(values.jobs);
  if (!Number.isInteger(jobs) || jobs < 1)
    throw new Error(`--jobs must be a positive integer, got ${values.jobs}`);
  const adapters = ADAPTERS.filter((adapter) => values.only === undefined || adapter.name === values.only);
  if (adapters.length === 0) {
    throw new Error(`--only must be one of ${ADAPTERS.map((a) => a.name).join(", ")}, got ${values.only}`);
  }

  const declared = {};
  for (const adapter of ADAPTERS) declared[adapter.name] = await declaredRangeOf(adapter);

  const cases = [];
  for (const adapter of adapters) {
    const { range: declaredRange, targetPackage } = declared[adapter.name];
    let published = PUBLISHED[targetPackage];
    if (!published)
      throw new Error(`no published-version snapshot for ${targetPackage} in ${import.meta.url}`);
    if (values.registry) {
      const live = await registryVersions(targetPackage);
      const added = live.filter((v) => semver.satisfies(v, declaredRange) && !published.includes(v));
      if (added.length > 0) console.log(`${targetPackage}: not in the pinned snapshot: ${added.join(", ")}`);
      published = live;
    }
    const selected = versionsToTest(published, declaredRange);
    const versions = selected.map(({ version }) => version);
    if (versions.length === 0)
      throw new Error(`${targetPackage}: no published version inside ${declaredRange}`);
    console.log(`${adapter.name}: ${targetPackage} ${declaredRange} -> ${versions.join(", ")}`);
    const companions = await Promise.all(
      selected.map(({ version, edge }) => adapter.companions(version, declared, edge)),
    );
    for (const [index, version] of versions.entries()) {
      cases.push({
        adapter,
        targetPackage,
        version,
        companions: companions[index],
        specs: [`${targetPackage}@${version}`, ...companions[index], ZOD_SPEC],
      });
    }
  }

  const started = Date.now();
  const results = await pool(cases, jobs, async (testCase) => {
    const result = await runCase(testCase, values.keep);
    console.log(
      `${result.ok ? "ok  " : "FAIL"} ${testCase.targetPackage}@${testCase.version} (${result.seconds.toFixed(1)}s)`,
    );
    return result;
  });

  for (const [index, result] of results.entries()) {
    if (!result.ok) {
      const { targetPackage, version } = cases[index];
      console.log(`\n--- ${targetPackage}@${version} failed ---\n${result.output.trim()}\n`);
    }
  }
  console.log("");
  printTable(
    cases.map((testCase, index) => [
      testCase.targetPackage,
      testCase.version,
      testCase.companions.join(" ") || "-",
      results[index].ok ? `pass (${results[index].summary})` : `FAIL (${results[index].summary})`,
      results[index].installSeconds.toFixed(1),
      (results[index].seconds - results[index].installSeconds).toFixed(1),
    ]),
  );
  const failed = results.filter((result) => !result.ok).length;
  console.log(
    `\n${cases.length - failed} of ${cases.length} versions passed in ${((Date.now() - started) / 1000).toFixed(0)}s`,
  );
  if (failed > 0) process.exitCode = 1;
}

main().catch((error) => {
  console.error(`version-matrix: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
