// @aa/engine benchmark: decide() under a delegation token against the root agent, in one run.
// Memory store (the cheapest decide, so delegation's share is the largest it gets). A token's
// signature is verified once per process, then the chain is resolved from memory: the table also
// shows what a signature check (jose, EdDSA) would cost if it ran on every call.
import { compilePolicy, parsePolicy } from "@aa/policy";
import { measureAsync, table, us } from "../../../scripts/bench-util.mjs";
import { verifyDelegationToken } from "../dist/delegation/token.js";
import { openEngine } from "../dist/index.js";

const quick = process.env.AA_BENCH_QUICK === "1";
const policy = compilePolicy(
  parsePolicy(`version: 1
default: deny
policies:
  - name: reads
    action: "read.*"
    effect: allow
    when: [ { field: args.size, op: lt, value: 50 } ]
`),
);
const engine = await openEngine({ policy, store: ":memory:", circuitBreaker: { threshold: 0 } });
const a = await engine.delegate({ agentId: "root" }, "a", { capabilities: ["read.*", "search.*"] });
const b = await engine.delegate({ agentId: "root/a", delegationToken: a.token }, "b", {
  capabilities: ["read.*"],
});
const c = await engine.delegate({ agentId: "root/a/b", delegationToken: b.token }, "c", {
  capabilities: ["read.file"],
});
const base = { agent: { id: "root" }, actionType: "read.file", toolName: "read_file", args: { size: 3 } };
const variants = {
  "root agent (no delegation)": () => engine.decide(base),
  "delegated child, depth 1 (token cached)": () => engine.decide({ ...base, delegationToken: a.token }),
  "delegated great-grandchild, depth 3 (token cached)": () =>
    engine.decide({ ...base, delegationToken: c.token }),
  "depth 1, outside its capabilities (NOT_DELEGATED)": () =>
    engine.decide({ ...base, actionType: "pay", delegationToken: a.token }),
};
const jwks = engine.jwks();
const signatureOnly = () => verifyDelegationToken(a.token, jwks, "default");
const p50s = Object.fromEntries(
  [...Object.keys(variants), "signature check alone (jose jwtVerify)"].map((k) => [k, []]),
);
// Interleaved rounds (the machine is shared); medians of the round p50s.
for (let round = 0; round < (quick ? 3 : 7); round++) {
  for (const [name, fn] of Object.entries(variants)) {
    p50s[name].push((await measureAsync(fn, { iterations: quick ? 5_000 : 20_000, warmup: 2_000 })).p50);
  }
  p50s["signature check alone (jose jwtVerify)"].push(
    (await measureAsync(signatureOnly, { iterations: quick ? 1_000 : 3_000, warmup: 200 })).p50,
  );
}
const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const root = median(p50s["root agent (no delegation)"]);
table(
  Object.entries(p50s).map(([name, xs]) => ({
    "decide() on memory": name,
    p50: us(median(xs)),
    "× root": (median(xs) / root).toFixed(2),
  })),
);
await engine.close();
