/**
 * The user's authority through delegation: a call made by a delegated sub-agent for a user is
 * allowed only when the user holds the scope the policy requires AND every delegation on the chain
 * covers the action (effective authority = user scopes ∩ every capability on the chain). Random
 * delegation trees up to depth 8; and sub-agents fanning out for one user share the user's limit.
 */
import { compilePolicy, hasPermission, matchesAction, parsePolicy } from "@aa/policy";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Engine, openEngine } from "../src/index.js";

const TOOLS = ["flights.book", "flights.cancel", "hotels.book", "payments.refund"] as const;
const SCOPE: Record<(typeof TOOLS)[number], string> = {
  "flights.book": "flights:book",
  "flights.cancel": "flights:cancel",
  "hotels.book": "hotels:book",
  "payments.refund": "payments:refund",
};
const policy = compilePolicy(
  parsePolicy(
    `version: 1
policies:
${TOOLS.map((tool) => `  - { name: ${tool}, action: ${tool}, effect: allow, required_scopes: ["${SCOPE[tool]}"] }`).join("\n")}
`,
    { source: "identity-delegation.yaml" },
  ),
);

type Tree = { pick: number[]; children: Tree[] };
const tree: fc.Arbitrary<Tree> = fc.letrec<{ node: Tree }>((tie) => ({
  node: fc.record({
    // Which of the parent's capabilities the child keeps (indexes, taken modulo the parent's count).
    pick: fc.uniqueArray(fc.nat(5), { minLength: 1, maxLength: 4 }),
    children: fc.oneof(
      { depthSize: "small", withCrossShrink: true },
      fc.constant([]),
      fc.array(tie("node"), { minLength: 1, maxLength: 2 }),
    ),
  }),
})).node;
/** A straight chain, so depth 8 is reached in every run of the second property. */
const chain = fc.array(fc.uniqueArray(fc.nat(5), { minLength: 1, maxLength: 4 }), {
  minLength: 8,
  maxLength: 8,
});

const ROOT_CAPABILITIES = ["flights.*", "hotels.book", "payments.refund", "**"];
const userScopes = fc.uniqueArray(
  fc.constantFrom("flights:*", "flights:book", "flights:cancel", "hotels:book", "payments:refund"),
  { maxLength: 3 },
);

async function checkNode(
  engine: Engine,
  agentId: string,
  token: string | undefined,
  capabilitiesOnChain: string[][],
  scopes: string[],
): Promise<void> {
  for (const tool of TOOLS) {
    const result = await engine.decide({
      agent: { id: agentId },
      ...(token === undefined ? {} : { delegationToken: token }),
      actionType: tool,
      principal: { userId: "ada", scopes },
      dryRun: true,
    });
    const delegated = capabilitiesOnChain.every((caps) => caps.some((glob) => matchesAction(glob, tool)));
    const userMay = hasPermission(scopes, SCOPE[tool]);
    expect(result.status, `${tool} at ${agentId} (user ${scopes.join(",")})`).toBe(
      delegated && userMay ? "executed" : "denied",
    );
    if (!delegated) expect(result.denialReason).toBe("NOT_DELEGATED");
    else if (!userMay) expect(result.denialReason).toBe("CONDITIONS_DENIED");
  }
}

describe("effective authority = user scopes ∩ every delegation on the chain", () => {
  it("holds in random delegation trees (property)", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(userScopes, tree, async (scopes, root) => {
        const rootAgent = `planner-${++run}`;
        await checkNode(engine, rootAgent, undefined, [], scopes);
        let nodes = 0;
        const walk = async (
          node: Tree,
          parent: { agentId: string; token?: string; caps: string[] },
          onChain: string[][],
          depth: number,
        ) => {
          if (depth > 8 || nodes >= 20) return;
          nodes++;
          const caps = [...new Set(node.pick.map((i) => parent.caps[i % parent.caps.length]!))];
          const grant = await engine.delegate(
            { agentId: parent.agentId, ...(parent.token ? { delegationToken: parent.token } : {}) },
            `w${nodes}`,
            { capabilities: caps },
          );
          const chainCaps = [...onChain, caps];
          await checkNode(engine, grant.delegation.agentId, grant.token, chainCaps, scopes);
          for (const child of node.children)
            await walk(
              child,
              { agentId: grant.delegation.agentId, token: grant.token, caps },
              chainCaps,
              depth + 1,
            );
        };
        await walk(root, { agentId: rootAgent, caps: ROOT_CAPABILITIES }, [], 1);
      }),
      { numRuns: 25 },
    );
    await engine.close();
  });

  it("holds at depth 8 on every run, and the records name the user and the sub-agent tier", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    let run = 0;
    await fc.assert(
      fc.asyncProperty(userScopes, chain, async (scopes, picks) => {
        let parent: { agentId: string; token?: string; caps: string[] } = {
          agentId: `root-${++run}`,
          caps: ROOT_CAPABILITIES,
        };
        const onChain: string[][] = [];
        for (const [depth, pick] of picks.entries()) {
          const caps = [...new Set(pick.map((i) => parent.caps[i % parent.caps.length]!))];
          const grant = await engine.delegate(
            { agentId: parent.agentId, ...(parent.token ? { delegationToken: parent.token } : {}) },
            `d${depth + 1}`,
            { capabilities: caps },
          );
          onChain.push(caps);
          expect(grant.delegation.depth).toBe(depth + 1);
          await checkNode(engine, grant.delegation.agentId, grant.token, onChain, scopes);
          parent = { agentId: grant.delegation.agentId, token: grant.token, caps };
        }
      }),
      { numRuns: 15 },
    );
    // One real (audited) call from the deepest sub-agent of a fresh chain.
    let parent: { agentId: string; token?: string } = { agentId: "root-audit" };
    for (let depth = 1; depth <= 8; depth++) {
      const grant = await engine.delegate(
        { agentId: parent.agentId, ...(parent.token ? { delegationToken: parent.token } : {}) },
        `d${depth}`,
        { capabilities: ["flights.*"] },
      );
      parent = { agentId: grant.delegation.agentId, token: grant.token };
    }
    const result = await engine.decide({
      agent: { id: parent.agentId },
      delegationToken: parent.token!,
      actionType: "flights.book",
      principal: { userId: "ada", email: "ada@example.com", scopes: ["flights:*"] },
    });
    expect(result.status).toBe("executed");
    const record = (await engine.audit({ limit: 1000 })).items.find((r) => r.id === result.auditEventId)!;
    expect(record).toMatchObject({
      tier: "sub-agent",
      user: { id: "ada", email: "ada@example.com", tenant: null },
    });
    expect(record.delegation).toHaveLength(9);
    await engine.close();
  });
});

describe("a user's rate limit across delegated sub-agents", () => {
  it("concurrent calls of many sub-agents acting for one user never pass the user's limit", async () => {
    const engine = await openEngine({
      policy,
      store: ":memory:",
      rateLimits: { user: { limit: 4, windowMs: 3_600_000 } },
    });
    const workers = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        engine.delegate({ agentId: "planner" }, `worker-${i}`, { capabilities: ["flights.*"] }),
      ),
    );
    const ada = { userId: "ada", scopes: ["flights:*"] };
    const results = await Promise.all(
      workers.flatMap((grant) =>
        [1, 2].map(() =>
          engine.decide({
            agent: { id: grant.delegation.agentId },
            delegationToken: grant.token,
            actionType: "flights.book",
            principal: ada,
          }),
        ),
      ),
    );
    expect(results.filter((r) => r.status === "executed")).toHaveLength(4);
    expect(results.filter((r) => r.denialReason === "RATE_LIMITED")).toHaveLength(8);
    // Another user of the same sub-agents is unaffected.
    const other = await engine.decide({
      agent: { id: workers[0]!.delegation.agentId },
      delegationToken: workers[0]!.token,
      actionType: "flights.book",
      principal: { userId: "bo", scopes: ["flights:book"] },
    });
    expect(other.status).toBe("executed");
    await engine.close();
  });
});
