/**
 * A temporary host app whose `ai` is 6.x (the workspace installs it as the `ai-v6` alias): its
 * node_modules links `ai`, `zod` and `@aa/core`, and it holds copies of the scenario scripts.
 */
import { execFile } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const PACKAGE = new URL("..", import.meta.url).pathname;
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

export interface V6Host {
  readonly root: string;
  run<T>(script: string): Promise<T>;
  remove(): void;
}

export function createV6Host(): V6Host {
  const root = realpathSync(mkdtempSync(join(tmpdir(), "aa-vercel-ai-v6-")));
  writeFileSync(
    join(root, "package.json"),
    JSON.stringify({ name: "v6-host", private: true, dependencies: { ai: "6.0.322", zod: "^4.0.0" } }),
  );
  mkdirSync(join(root, "node_modules", "@aa"), { recursive: true });
  const link = (from: string, to: string) =>
    symlinkSync(realpathSync(join(PACKAGE, from)), join(root, to), "dir");
  link("node_modules/ai-v6", "node_modules/ai");
  link("node_modules/zod", "node_modules/zod");
  link("node_modules/@aa/core", "node_modules/@aa/core");
  for (const file of ["kit.mjs", "v6-app.mjs", "v6-app.cjs"])
    copyFileSync(join(FIXTURES, file), join(root, file));
  return {
    root,
    async run<T>(script: string): Promise<T> {
      const { stdout } = await run(
        process.execPath,
        ["--import", join(PACKAGE, "dist/register.js"), join(root, script)],
        {
          cwd: root,
          env: { ...process.env, AA_HOST_ROOT: root, AA_ADAPTER: join(PACKAGE, "dist/index.js") },
          maxBuffer: 16 * 1024 * 1024,
        },
      );
      return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as T;
    },
    remove() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}
