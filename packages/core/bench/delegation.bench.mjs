// @aa/core benchmark: one governed tool call (the interceptor every adapter uses, embedded gate,
// memory store) made by the root agent against the same call made inside `child.run()` of a
// delegated child, in one run. The delegated call reads the AsyncLocalStorage (getStore only) and
// is decided under the child's token (signature verified once, then resolved from memory).

import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { initAssembly } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const ROOT = new URL("./fixtures/", import.meta.url).pathname;
const policy = {
  version: 1,
  default: "deny",
  policies: [
    { name: "adds", action: "add", effect: "allow", when: [{ field: "args.a", op: "lt", value: 1000 }] },
  ],
};

/** An adapter with no framework: it hands out the interceptor so the bench can call it like a patch would. */
let interceptor;
const captureAdapter = {
  name: "bench-capture",
  supportedVersions: "*",
  isAvailable: () => true,
  registerHooks(given) {
    interceptor = given;
    return { entryPoints: ["bench"] };
  },
  unregisterHooks() {},
};

const assembly = await initAssembly({
  mode: "sdk-only",
  agent: { id: "bench-bot" },
  policy,
  store: ":memory:",
  adapters: [captureAdapter],
  root: ROOT,
});
const call = { framework: "bench", toolName: "add", args: { a: 1, b: 2 } };
const invoke = () => 3;
const governed = () => interceptor.intercept(call, invoke);
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const OPTIONS = { iterations: quick ? 5_000 : 20_000, warmup: 2_000 };

const child = await assembly.delegate("worker", { capabilities: ["add"] });
const grandchild = await child.delegate("helper", { capabilities: ["add"] });
const p50s = {
  "root agent": [],
  "inside child.run() (depth 1)": [],
  "inside grandchild.run() (depth 2)": [],
};
for (let round = 0; round < (quick ? 3 : 7); round++) {
  p50s["root agent"].push((await measureAsync(governed, OPTIONS)).p50);
  p50s["inside child.run() (depth 1)"].push((await child.run(() => measureAsync(governed, OPTIONS))).p50);
  p50s["inside grandchild.run() (depth 2)"].push(
    (await grandchild.run(() => measureAsync(governed, OPTIONS))).p50,
  );
}
const root = median(p50s["root agent"]);
table(
  Object.entries(p50s).map(([name, xs]) => ({
    "governed tool call (memory store)": name,
    p50: us(median(xs)),
    "× root": (median(xs) / root).toFixed(2),
  })),
);
await child.close();
await assembly.shutdown();
