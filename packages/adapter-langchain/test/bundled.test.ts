/**
 * A REAL bundled app: esbuild inlines @langchain/core into one ESM file in a temp dir whose
 * node_modules holds only @aa/core and this adapter, so the framework classes exist only inside
 * the bundle. The app governs them with `createLangChainAdapter({ bundled: true })` and
 * `manuallyInstrument()`; it runs in a child process.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bundleHostApp } from "../../../scripts/bundle-host-app.mjs";
import { TEST_POLICY } from "./helpers.js";

const run = promisify(execFile);
const PACKAGE_DIR = new URL("..", import.meta.url).pathname;
const APP = new URL("./fixtures/bundled-app/app.mjs", import.meta.url).pathname;

let dir: string;
let bundle: string;
let inputs: string[];
/** What the bundle still imports at run time (everything else is inlined). */
let externals: string[];
beforeAll(async () => {
  ({ dir, bundle, inputs, externals } = await bundleHostApp({
    build,
    app: APP,
    packageName: "@aa/adapter-langchain",
    packageDir: PACKAGE_DIR,
    prefix: "aa-langchain-bundled-",
  }));
}, 60_000);
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("the bundle inlines @langchain/core: nothing of it is imported from node_modules", () => {
  expect(inputs.some((input) => input.includes("@langchain/core/dist/tools/index.js"))).toBe(true);
  expect(externals).toContain("@aa/core");
  expect(externals).toContain("@aa/adapter-langchain");
  expect(externals.filter((path) => /^(@langchain|zod)/.test(path))).toEqual([]);
});

it("governs the bundled StructuredTool only after manuallyInstrument, and shutdown restores it", async () => {
  const { stdout } = await run(process.execPath, [bundle, JSON.stringify(TEST_POLICY), dir], { cwd: dir });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);

  expect(result.registered).toEqual([
    {
      name: "langchain",
      status: "installed",
      entryPoints: [],
      detail: expect.stringContaining('waiting for manuallyInstrument(namespace, "@langchain/core/tools")'),
    },
  ]);
  // Before manuallyInstrument the bundle's copy is separate from anything installed: ungoverned.
  expect(result.beforeManual).toEqual({ value: "wipe 1" });

  expect(result.manualTools).toEqual({
    specifier: "@langchain/core/tools",
    adapters: [
      {
        name: "langchain",
        entryPoints: ["@langchain/core/tools StructuredTool.prototype.call (manual)"],
        detail: expect.stringContaining("@langchain/core/messages"),
      },
    ],
  });
  // Idempotent: the same namespace again wraps nothing more.
  expect(result.manualAgain.adapters[0].entryPoints).toEqual([]);
  expect(result.manualMessages.adapters[0]).toMatchObject({ name: "langchain", entryPoints: [] });

  expect(result.deniedDirect).toEqual({ error: "AssemblyDeniedError", reason: "NO_MATCHING_POLICY" });
  expect(result.allowed).toEqual({ value: "transfer 5" });
  // A denial with a tool-call id is answered with the bundle's own ToolMessage, for the model.
  expect(result.agentDenial.isBundledToolMessage).toBe(true);
  expect(result.agentDenial.status).toBe("error");
  expect(result.agentDenial.content).toContain("args.amount lt 100 (actual: 700)");

  expect(result.audit).toHaveLength(3);
  expect(result.audit.map((r: { tool: string }) => r.tool).sort()).toEqual(["transfer", "transfer", "wipe"]);
  expect(result.audit.filter((r: { status: string }) => r.status === "executed")).toHaveLength(1);

  expect(result.wrappedWhileGoverned).toBe(true);
  expect(result.restored).toBe(true);
  expect(result.afterShutdown).toEqual({ value: "wipe 3" });
  // Only the allowed call ran while governed.
  expect(result.ran).toEqual(["wipe 1", "transfer 5", "wipe 3"]);
});
