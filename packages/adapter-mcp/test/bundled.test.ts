/**
 * A REAL bundled app: esbuild inlines the MCP SDK into one ESM file in a temp dir whose
 * node_modules holds only @aa/core and this adapter, so `Client` and `Server` exist only inside
 * the bundle. The app governs them with `createMcpAdapter({ bundled: true })` and
 * `manuallyInstrument()`; it runs in a child process.
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { promisify } from "node:util";
import { build } from "esbuild";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bundleHostApp } from "../../../scripts/bundle-host-app.mjs";

const run = promisify(execFile);
const PACKAGE_DIR = new URL("..", import.meta.url).pathname;
const APP = new URL("./fixtures/bundled-app/app.mjs", import.meta.url).pathname;
const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-transfers",
      action: "transfer",
      effect: "allow",
      when: [{ field: "args.amount", op: "lt", value: 100 }],
    },
  ],
};

let dir: string;
let bundle: string;
let inputs: string[];
/** What the bundle still imports at run time (everything else is inlined). */
let externals: string[];
beforeAll(async () => {
  ({ dir, bundle, inputs, externals } = await bundleHostApp({
    build,
    app: APP,
    packageName: "@aa/adapter-mcp",
    packageDir: PACKAGE_DIR,
    prefix: "aa-mcp-bundled-",
  }));
}, 60_000);
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

it("the bundle inlines the MCP SDK: nothing of it is imported from node_modules", () => {
  expect(inputs.some((input) => input.includes("@modelcontextprotocol/sdk/dist/esm/client/index.js"))).toBe(
    true,
  );
  expect(inputs.some((input) => input.includes("@modelcontextprotocol/sdk/dist/esm/server/index.js"))).toBe(
    true,
  );
  expect(externals).toContain("@aa/core");
  expect(externals).toContain("@aa/adapter-mcp");
  expect(externals.filter((path) => /^(@modelcontextprotocol|zod)/.test(path))).toEqual([]);
});

it("governs the bundled Client and Server only after manuallyInstrument, and shutdown restores them", async () => {
  const { stdout } = await run(process.execPath, [bundle, JSON.stringify(POLICY), dir], { cwd: dir });
  const result = JSON.parse(stdout.trim().split("\n").at(-1)!);

  expect(result.registered).toEqual([
    {
      name: "mcp",
      status: "installed",
      entryPoints: [],
      detail: expect.stringContaining("waiting for manuallyInstrument(namespace"),
    },
  ]);
  // Before manuallyInstrument the bundle's copy is separate from anything installed: ungoverned.
  expect(result.beforeManual).toEqual({ isError: false, text: "wipe 1 done" });

  expect(result.manualClient).toEqual({
    specifier: "@modelcontextprotocol/sdk/client/index.js",
    adapters: [
      {
        name: "mcp",
        entryPoints: [
          "@modelcontextprotocol/sdk/client Client.prototype.callTool (manual)",
          "@modelcontextprotocol/sdk/client Client.prototype.request [tools/call] (manual)",
        ],
      },
    ],
  });
  expect(result.manualServer.adapters[0].entryPoints).toEqual([
    "@modelcontextprotocol/sdk/server Server.prototype.setRequestHandler [tools/call] (manual)",
    "@modelcontextprotocol/sdk/server Server.prototype._onrequest [tools/call registered before install] (manual)",
  ]);
  // Idempotent: the same namespace again wraps nothing more.
  expect(result.manualAgain.adapters[0].entryPoints).toEqual([]);

  // Client side: the denial is an isError result the model reads; the server is never asked.
  expect(result.clientDenied.isError).toBe(true);
  expect(result.clientDenied.text).toContain("NO_MATCHING_POLICY");
  expect(result.clientAllowed).toEqual({ isError: false, text: "transfer 5 done" });
  // Server side, for a handler registered before (dispatch) and after (setRequestHandler).
  expect(result.earlyServerDenied.isError).toBe(true);
  expect(result.lateServerAllowed).toEqual({ isError: false, text: "transfer 7 done" });
  expect(result.lateServerDenied.isError).toBe(true);

  // Exactly the governed calls: in one process the client and the server both decide an allowed
  // client call (one record per side); denials stop at the first side that decides.
  const sorted = result.audit
    .map((r: { tool: string; status: string; side: string }) => `${r.side} ${r.tool} ${r.status}`)
    .sort();
  expect(sorted).toEqual(
    [
      "client wipe denied",
      "client transfer executed",
      "server transfer executed",
      "server wipe denied",
      "server transfer executed",
      "server wipe denied",
    ].sort(),
  );

  expect(result.restored).toEqual({
    callTool: true,
    request: true,
    setRequestHandler: true,
    onrequest: true,
  });
  expect(result.afterShutdown).toEqual({ isError: false, text: "wipe 9 done" });
  // Only allowed calls ran while governed.
  expect(result.ran).toEqual(["early:wipe 1", "early:transfer 5", "late:transfer 7", "early:wipe 9"]);
});
