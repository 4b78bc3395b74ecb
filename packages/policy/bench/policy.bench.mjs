// Policy evaluation, 100 policies: @aa/policy's compiled evaluator against Cedar-wasm (pre-parsed policy
// set, statefulIsAuthorized) on equivalent policies, in the same run.
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { measure, table, us } from "../../../scripts/bench-util.mjs";
import { compilePolicy, validatePolicy } from "../dist/index.js";

const SERVICES = 20;

/** 100 policies: exact actions with conditions, per-service globs, approvals and two catch-all guards. */
function buildPolicies() {
  const policies = [];
  for (let s = 0; s < SERVICES; s++) {
    policies.push({
      name: `svc${s}-update-small`,
      action: `svc${s}.update`,
      effect: "allow",
      when: [
        { field: "args.amount", op: "lt", value: 50 + s },
        { field: "metadata.env", op: "in", value: ["dev", "staging"] },
      ],
      otherwise: "require_approval",
    });
    policies.push({
      name: `svc${s}-create`,
      action: [`svc${s}.create`, `svc${s}.list`],
      effect: "allow",
      when: [{ field: "agent.id", op: "starts_with", value: "bot" }],
    });
    policies.push({
      name: `svc${s}-delete-review`,
      action: `svc${s}.delete`,
      effect: "require_approval",
      approval: { timeout: "8h" },
    });
    policies.push({
      name: `svc${s}-no-force`,
      action: `svc${s}.*`,
      effect: "deny",
      when: [{ field: "args.force", op: "eq", value: true }],
    });
    if (s < SERVICES - 1) policies.push({ name: `svc${s}-reads`, action: `svc${s}.read*`, effect: "allow" });
  }
  policies.push({
    name: "depth-guard",
    action: "**",
    effect: "deny",
    when: [{ field: "agent.depth", op: "gt", value: 5 }],
  });
  return policies;
}

const policies = buildPolicies();
if (policies.length !== 100) throw new Error(`expected 100 policies, built ${policies.length}`);
const compiled = compilePolicy(validatePolicy({ version: 1, default: "deny", policies }));

const input = {
  actionType: "svc7.update",
  args: { amount: 40, force: false },
  metadata: { env: "staging" },
  agent: { id: "bot-7", depth: 1 },
};
const check = compiled.evaluate(input);
if (check.effect !== "allow" || check.conditionsEvaluated.length !== 4) {
  throw new Error(`unexpected decision: ${JSON.stringify(check)}`);
}

// Cedar equivalents: globs as `like` over context.actionType, conditions over context.
const cedarString = (text) => JSON.stringify(text);
const cedarCondition = (c) => {
  const path = `context.${c.field}`;
  switch (c.op) {
    case "lt":
      return `${path} < ${c.value}`;
    case "gt":
      return `${path} > ${c.value}`;
    case "eq":
      return `${path} == ${JSON.stringify(c.value)}`;
    case "in":
      return `[${c.value.map(cedarString).join(", ")}].contains(${path})`;
    case "starts_with":
      return `${path} like ${cedarString(`${c.value}*`)}`;
    default:
      throw new Error(`no Cedar form for ${c.op}`);
  }
};
const cedarPolicies = policies
  .map((p) => {
    const actions = Array.isArray(p.action) ? p.action : [p.action];
    const actionTest = `(${actions.map((a) => `context.actionType like ${cedarString(a.replaceAll("**", "*"))}`).join(" || ")})`;
    const conditions = (p.when ?? []).map(cedarCondition);
    const kind = p.effect === "deny" ? "forbid" : "permit";
    return `@id(${cedarString(p.name)})\n${kind}(principal, action, resource) when { ${[actionTest, ...conditions].join(" && ")} };`;
  })
  .join("\n");
const parsed = cedar.preparsePolicySet("bench", { staticPolicies: cedarPolicies });
if (parsed.type !== "success")
  throw new Error(`Cedar rejected the policies: ${JSON.stringify(parsed.errors)}`);
const cedarCall = {
  principal: { type: "Agent", id: "bot-7" },
  action: { type: "Action", id: "call" },
  resource: { type: "Tool", id: "svc7.update" },
  context: { actionType: input.actionType, args: input.args, metadata: input.metadata, agent: input.agent },
  preparsedPolicySetId: "bench",
  entities: [],
};
const cedarCheck = cedar.statefulIsAuthorized(cedarCall);
if (cedarCheck.type !== "success" || cedarCheck.response.decision !== "allow") {
  throw new Error(`unexpected Cedar answer: ${JSON.stringify(cedarCheck)}`);
}

globalThis.gc?.();
const ours = measure(() => compiled.evaluate(input), { iterations: 200_000, warmup: 50_000, batch: 10 });
globalThis.gc?.();
const theirs = measure(() => cedar.statefulIsAuthorized(cedarCall), { iterations: 5_000, warmup: 1_000 });

table([
  { engine: "@aa/policy compiled", p50: us(ours.p50), p99: us(ours.p99) },
  { engine: "cedar-wasm statefulIsAuthorized", p50: us(theirs.p50), p99: us(theirs.p99) },
]);
console.log(
  `100 policies: @aa/policy p50 ${us(ours.p50)} (target <= 1 µs), ${(theirs.p50 / ours.p50).toFixed(0)}x faster than Cedar-wasm (target >= 100x)`,
);
