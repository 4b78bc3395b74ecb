#!/usr/bin/env node
// Records the wire-contract fixtures (packages/wire-contract/fixtures/*.json) from a real gateway:
// each scenario's requests are sent to a gateway on a fresh SQLite file, and the responses are
// normalised (volatile values become placeholders, see packages/wire-contract/README.md).
// Run after changing the wire on purpose:  node packages/gateway/scripts/record-fixtures.mjs
// (after `pnpm --filter @aa/gateway build`), then review the diff of the fixtures. The files are
// formatted with the repository's Biome settings, so an unchanged wire gives an empty diff (the
// gateway test "wire-contract fixtures" re-records into AA_FIXTURES_OUT and fails on any drift).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGateway, createKey } from "../dist/index.js";

const out = process.env.AA_FIXTURES_OUT ?? new URL("../../wire-contract/fixtures/", import.meta.url).pathname;
const pendingOut = new URL("../../wire-contract/pending/", import.meta.url).pathname;

const POLICY = {
  version: 1,
  default: "deny",
  policies: [
    {
      name: "small-prs",
      action: "pr.open",
      effect: "allow",
      when: [{ field: "metadata.pr_size", op: "lt", value: 50 }],
      otherwise: "deny",
    },
    {
      name: "merges-need-review",
      action: "pr.merge",
      effect: "require_approval",
      approval: { timeout: "8h" },
    },
    { name: "reads", action: "repo.read", effect: "allow" },
  ],
  redact: [{ path: "$.token", mode: "mask" }],
};

const KEYS = {
  agent: { kind: "agent", org: "acme", agentId: "release-bot" },
  otherAgent: { kind: "agent", org: "acme", agentId: "docs-bot" },
  operator: { kind: "operator", org: "acme", name: "ops-alice" },
  admin: { kind: "admin", org: "acme", name: "admin-ada" },
  globexAgent: { kind: "agent", org: "globex", agentId: "release-bot" },
  globexAdmin: { kind: "admin", org: "globex", name: "admin-gus" },
};

const auth = (name) => ({ authorization: `Bearer <key:${name}>` });
const get = (path, key) => ({ method: "GET", path, ...(key ? { headers: auth(key) } : {}) });
const post = (path, key, body) => ({
  method: "POST",
  path,
  headers: auth(key),
  ...(body === undefined ? {} : { body }),
});
const put = (path, key, body) => ({ method: "PUT", path, headers: auth(key), body });
const del = (path, key) => ({ method: "DELETE", path, headers: auth(key) });
const act = (key, body) => post("/v1/actions", key, body);
const withToken = (request, token) => ({
  ...request,
  headers: { ...request.headers, "aa-delegation": token },
});
const UNKNOWN_KEY = `aa_agent_0123456789abcdef_${"0".repeat(64)}`;
const UNKNOWN_EVENT = "0190f0c0-0000-7000-8000-000000000000";
const UNKNOWN_KEY_ID = "ffffffffffffffff";
const LITERALS = [UNKNOWN_EVENT, UNKNOWN_KEY_ID, "apr_unknown", "dlg_unknown"];

/** @type {{name: string, description: string, setup?: object, exchanges: [string, object][]}[]} */
const scenarios = [
  {
    name: "service",
    description: "Health, readiness, JWKS, whoami of each key kind, reading the policy",
    exchanges: [
      ["health needs no key", get("/v1/health")],
      ["readiness needs no key", get("/v1/ready")],
      ["JWKS of every org with keys needs no key", get("/v1/jwks.json")],
      ["an agent key is its agent", get("/v1/whoami", "agent")],
      ["an operator key is its org", get("/v1/whoami", "operator")],
      ["any key reads the enforced policy", get("/v1/policies", "agent")],
      ["an unknown route is a 404 with a code", get("/v1/nope", "agent")],
    ],
  },
  {
    name: "auth-errors",
    description:
      "Missing, malformed, unknown and revoked keys; roles; bodies refused before anything is written",
    setup: { bodyLimit: 2048 },
    exchanges: [
      ["no key", get("/v1/whoami")],
      ["not a key", { method: "GET", path: "/v1/whoami", headers: { authorization: "Bearer nope" } }],
      [
        "an unknown key",
        { method: "GET", path: "/v1/whoami", headers: { authorization: `Bearer ${UNKNOWN_KEY}` } },
      ],
      ["an agent key may not read posture", get("/v1/posture", "agent")],
      ["an operator key may not act as an agent", act("operator", { actionType: "pr.open" })],
      ["an agent key may not create keys", post("/v1/keys", "agent", { kind: "agent", agentId: "x" })],
      [
        "malformed JSON",
        {
          method: "POST",
          path: "/v1/actions",
          headers: { ...auth("agent"), "content-type": "application/json" },
          rawBody: '{"actionType": "pr.open",',
        },
      ],
      ["a wrong type", act("agent", { actionType: 5 })],
      ["an unknown field", act("agent", { actionType: "pr.open", agent: { id: "someone-else" } })],
      ["a missing field", act("agent", { toolName: "x" })],
      ["a body that is not an object", act("agent", ["pr.open"])],
      ["an oversize body", act("agent", { actionType: "pr.open", args: { blob: "x".repeat(4096) } })],
      ["nothing of the above reached the audit", get("/v1/audit", "operator")],
      ["the admin revokes the other agent's key", del("/v1/keys/<keyId:otherAgent>", "admin")],
      ["a revoked key", get("/v1/whoami", "otherAgent")],
    ],
  },
  {
    name: "actions",
    description:
      "Decisions: executed, denied with failed conditions, dry run, no matching policy, idempotency",
    exchanges: [
      ["a small PR is allowed", act("agent", { actionType: "pr.open", metadata: { pr_size: 10 } })],
      [
        "a large PR is denied with the failed condition",
        act("agent", {
          actionType: "pr.open",
          toolName: "open_pr",
          framework: "langchain",
          metadata: { pr_size: 120 },
        }),
      ],
      [
        "a dry run writes nothing",
        act("agent", { actionType: "pr.open", metadata: { pr_size: 10 }, dryRun: true }),
      ],
      ["no matching policy is a denial", act("agent", { actionType: "db.drop" })],
      [
        "an idempotency key",
        act("agent", { actionType: "repo.read", args: { path: "README.md" }, eventId: "call-1" }),
      ],
      [
        "the retry returns the first decision",
        act("agent", { actionType: "repo.read", args: { path: "README.md" }, eventId: "call-1" }),
      ],
      [
        "the same key with another input is refused",
        act("agent", { actionType: "repo.read", args: { path: "LICENSE" }, eventId: "call-1" }),
      ],
      [
        "an agent may not choose observe mode (it would run denied calls)",
        act("agent", { actionType: "db.drop", enforcementMode: "observe" }),
      ],
      [
        "a delegation token that does not verify is a recorded denial",
        {
          ...act("agent", { actionType: "pr.open" }),
          headers: { ...auth("agent"), "aa-delegation": "eyJ.x.y" },
        },
      ],
    ],
  },
  {
    name: "approvals",
    description:
      "A held call: list, wait, approve, release exactly once; deny; self-approval and other agents refused",
    setup: { keys: { ...KEYS, selfOperator: { kind: "operator", org: "acme", name: "release-bot" } } },
    exchanges: [
      ["a merge is held for approval", act("agent", { actionType: "pr.merge", args: { pr: 7 } })],
      [
        "the agent's wait times out, still pending",
        get("/v1/approvals/<approval1>/wait?timeoutMs=0", "agent"),
      ],
      ["an agent key may not approve", post("/v1/approvals/<approval1>/approve", "agent", {})],
      ["another agent may not read it", get("/v1/approvals/<approval1>", "otherAgent")],
      ["another org does not see it", get("/v1/approvals/<approval1>", "globexAgent")],
      ["the operator lists pending approvals", get("/v1/approvals?state=pending", "operator")],
      [
        "a reviewer named like the requester may not approve",
        post("/v1/approvals/<approval1>/approve", "selfOperator", {}),
      ],
      [
        "the operator approves",
        post("/v1/approvals/<approval1>/approve", "operator", { reason: "looks good" }),
      ],
      [
        "the same reviewer's retry answers as the first did",
        post("/v1/approvals/<approval1>/approve", "operator", { reason: "looks good" }),
      ],
      [
        "another reviewer approving it again is a conflict",
        post("/v1/approvals/<approval1>/approve", "admin"),
      ],
      [
        "the agent's wait returns the decision",
        get("/v1/approvals/<approval1>/wait?timeoutMs=1000", "agent"),
      ],
      ["another agent may not release it", post("/v1/approvals/<approval1>/release", "otherAgent")],
      ["the agent releases the call", post("/v1/approvals/<approval1>/release", "agent")],
      ["a second release is refused", post("/v1/approvals/<approval1>/release", "agent")],
      ["another merge is held", act("agent", { actionType: "pr.merge", args: { pr: 8 } })],
      ["deny needs a reason", post("/v1/approvals/<approval2>/deny", "operator", {})],
      ["the operator denies it", post("/v1/approvals/<approval2>/deny", "operator", { reason: "not today" })],
      ["a denied approval releases nothing", post("/v1/approvals/<approval2>/release", "agent")],
      ["the agent lists its own approvals", get("/v1/approvals", "agent")],
      ["an unknown approval", get("/v1/approvals/apr_unknown", "operator")],
      ["a bad state filter", get("/v1/approvals?state=lost", "operator")],
    ],
  },
  {
    name: "outcomes",
    description: "Outcome reports with the spec's status codes, and receipts",
    exchanges: [
      ["a call runs", act("agent", { actionType: "pr.open", metadata: { pr_size: 3 } })],
      [
        "the agent reports success",
        post("/v1/audit/<event1>/outcome", "agent", { status: "success", message: "PR #9 opened" }),
      ],
      [
        "the last report wins",
        post("/v1/audit/<event1>/outcome", "agent", { status: "partial", metadata: { checks: 2 } }),
      ],
      ["not a UUID", post("/v1/audit/not-a-uuid/outcome", "agent", { status: "success" })],
      ["an unknown status", post("/v1/audit/<event1>/outcome", "agent", { status: "meh" })],
      ["a status of the wrong type", post("/v1/audit/<event1>/outcome", "agent", { status: 5 })],
      ["an unknown field", post("/v1/audit/<event1>/outcome", "agent", { status: "success", extra: true })],
      ["a missing status", post("/v1/audit/<event1>/outcome", "agent", { message: "?" })],
      ["another agent's event", post("/v1/audit/<event1>/outcome", "otherAgent", { status: "failure" })],
      [
        "an operator key does not report",
        post("/v1/audit/<event1>/outcome", "operator", { status: "failure" }),
      ],
      ["an unknown event", post(`/v1/audit/${UNKNOWN_EVENT}/outcome`, "agent", { status: "success" })],
      [
        "another org's event is unknown there",
        post("/v1/audit/<event1>/outcome", "globexAgent", { status: "success" }),
      ],
      ["the owning agent reads the receipt", get("/v1/receipts/<event1>", "agent")],
      ["an operator reads it too", get("/v1/receipts/<event1>", "operator")],
      ["another agent may not", get("/v1/receipts/<event1>", "otherAgent")],
      ["a denied call", act("agent", { actionType: "db.drop" })],
      ["has no receipt", get("/v1/receipts/<event2>", "agent")],
      ["the audit shows the outcome", get("/v1/audit?limit=1", "agent")],
    ],
  },
  {
    name: "audit",
    description:
      "Audit pages (an agent sees its own records), verify, policy replacement, kill switch, posture",
    exchanges: [
      [
        "the agent reads with a secret argument",
        act("agent", { actionType: "repo.read", args: { path: "a", token: "s3cret" } }),
      ],
      ["another agent acts", act("otherAgent", { actionType: "repo.read", args: { path: "b" } })],
      [
        "the agent acts again, in a trace",
        act("agent", {
          actionType: "pr.open",
          metadata: { pr_size: 1 },
          traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
        }),
      ],
      ["the agent sees only its records (the secret masked)", get("/v1/audit", "agent")],
      ["the operator pages through everything", get("/v1/audit?limit=2", "operator")],
      ["the next page", get("/v1/audit?limit=2&cursor=<cursor1>", "operator")],
      ["filtered by action type", get("/v1/audit?actionType=pr.open", "operator")],
      ["filtered by trace id", get("/v1/audit?traceId=4bf92f3577b34da6a3ce929d0e0e4736", "operator")],
      ["newest first", get("/v1/audit?order=desc&limit=2", "operator")],
      ["the next older page", get("/v1/audit?order=desc&limit=2&cursor=<cursor2>", "operator")],
      ["newest first, filtered by action type", get("/v1/audit?order=desc&actionType=repo.read", "operator")],
      ["the agent's newest record", get("/v1/audit?order=desc&limit=1", "agent")],
      [
        "an ascending cursor is refused newest first",
        get("/v1/audit?order=desc&cursor=<cursor1>", "operator"),
      ],
      ["a bad order", get("/v1/audit?order=newest", "operator")],
      ["a bad limit", get("/v1/audit?limit=0", "operator")],
      ["the chain verifies", get("/v1/audit/verify", "operator")],
      ["an agent may not verify", get("/v1/audit/verify", "agent")],
      [
        "the operator contains the agent",
        post("/v1/agents/release-bot/contain", "operator", { reason: "incident 12" }),
      ],
      ["a contained agent is denied", act("agent", { actionType: "repo.read" })],
      ["whoami shows it", get("/v1/whoami", "agent")],
      ["the operator lists controls", get("/v1/agents", "operator")],
      ["the operator releases it", post("/v1/agents/release-bot/release", "operator", { reason: "fixed" })],
      [
        "releasing again is a conflict",
        post("/v1/agents/release-bot/release", "operator", { reason: "again" }),
      ],
      ["an operator may not replace the policy", put("/v1/policies", "operator", { policy: POLICY })],
      [
        "an invalid policy is refused with its issues",
        put("/v1/policies", "admin", { policy: { version: 1, default: "maybe", policies: [] } }),
      ],
      [
        "the admin replaces the policy",
        put("/v1/policies", "admin", {
          policy: {
            ...POLICY,
            policies: [...POLICY.policies, { name: "drops", action: "db.drop", effect: "deny" }],
          },
        }),
      ],
      ["the new policy is enforced", act("agent", { actionType: "db.drop" })],
      ["the other org still has the default", get("/v1/policies", "globexAgent")],
      ["posture", get("/v1/posture", "operator")],
    ],
  },
  {
    name: "delegations",
    description:
      "An agent delegates narrower capabilities to a child; the child acts with its token; revoke cascades",
    exchanges: [
      [
        "the agent delegates to a reviewer",
        post("/v1/delegations", "agent", {
          name: "reviewer",
          capabilities: ["pr.open", "repo.read"],
          ttlSeconds: 600,
        }),
      ],
      [
        "the child acts within its capabilities",
        withToken(act("agent", { actionType: "pr.open", metadata: { pr_size: 3 } }), "<token1>"),
      ],
      ["outside them it is denied", withToken(act("agent", { actionType: "pr.merge" }), "<token1>")],
      [
        "the child delegates further, narrower",
        withToken(
          post("/v1/delegations", "agent", { name: "reader", capabilities: ["repo.read"] }),
          "<token1>",
        ),
      ],
      [
        "the child may not widen its authority",
        withToken(
          post("/v1/delegations", "agent", { name: "merger", capabilities: ["pr.merge"] }),
          "<token1>",
        ),
      ],
      [
        "a lifetime over a day is refused",
        post("/v1/delegations", "agent", { name: "long", capabilities: ["repo.read"], ttlSeconds: 90000 }),
      ],
      [
        "an operator key does not delegate",
        post("/v1/delegations", "operator", { name: "x", capabilities: ["repo.read"] }),
      ],
      [
        "another agent cannot delegate with it",
        withToken(
          post("/v1/delegations", "otherAgent", { name: "x", capabilities: ["repo.read"] }),
          "<token1>",
        ),
      ],
      [
        "another agent cannot use the token",
        withToken(act("otherAgent", { actionType: "pr.open", metadata: { pr_size: 3 } }), "<token1>"),
      ],
      ["the agent lists the delegations below it", get("/v1/delegations", "agent")],
      ["the child lists as itself with its token", withToken(get("/v1/delegations", "agent"), "<token1>")],
      [
        "the grandchild may not revoke its parent's delegation",
        withToken(del("/v1/delegations/<delegation1>", "agent"), "<token2>"),
      ],
      ["an operator key does not present a token", withToken(get("/v1/delegations", "operator"), "<token1>")],
      ["the operator lists the org's active ones", get("/v1/delegations?activeOnly=true", "operator")],
      ["another agent may not revoke them", del("/v1/delegations/<delegation1>", "otherAgent")],
      [
        "the agent revokes the reviewer, and the reader with it",
        del("/v1/delegations/<delegation1>", "agent"),
      ],
      [
        "the revoked grandchild's token is refused",
        withToken(act("agent", { actionType: "repo.read" }), "<token2>"),
      ],
      ["the cascade shows in the list", get("/v1/delegations?role=parent", "agent")],
      ["an unknown delegation", del("/v1/delegations/dlg_unknown", "operator")],
      ["a bad role", get("/v1/delegations?role=boss", "agent")],
    ],
  },
  {
    name: "keys",
    description: "Admins create, list and revoke keys of their own org; keys are shown once",
    exchanges: [
      [
        "the admin creates an agent key",
        post("/v1/keys", "admin", { kind: "agent", agentId: "new-bot", name: "new bot" }),
      ],
      [
        "the new key works",
        { method: "GET", path: "/v1/whoami", headers: { authorization: "Bearer <newKey1>" } },
      ],
      ["an agent key needs an agent id", post("/v1/keys", "admin", { kind: "agent" })],
      ["an operator key has none", post("/v1/keys", "admin", { kind: "operator", agentId: "x" })],
      ["an unknown kind", post("/v1/keys", "admin", { kind: "root" })],
      ["an operator may not create keys", post("/v1/keys", "operator", { kind: "operator" })],
      ["the admin lists the org's keys (no secrets)", get("/v1/keys", "admin")],
      ["the admin revokes the new key", del("/v1/keys/<keyId1>", "admin")],
      [
        "the revoked key is refused",
        { method: "GET", path: "/v1/whoami", headers: { authorization: "Bearer <newKey1>" } },
      ],
      ["an unknown key id", del(`/v1/keys/${UNKNOWN_KEY_ID}`, "admin")],
      ["another org's admin cannot revoke it", del("/v1/keys/<keyId:agent>", "globexAdmin")],
    ],
  },
];

// ------------------------------------------------------------------ normalisation

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const APPROVAL = /^apr_[A-Za-z0-9_-]{22}$/;
const DELEGATION = /^dlg_[A-Za-z0-9_-]{22}$/;
const SECRET_KEY = /^aa_(agent|operator|admin)_[0-9a-f]{16}_[0-9a-f]{64}$/;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
const ISO_IN_TEXT = /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g;
/** Fields whose values change on every run and are not referred to later. */
const ANY_FIELDS = new Set(["hash", "prev_hash", "x", "kid", "receipt", "store"]);

class Normaliser {
  /** value → placeholder name */
  names = new Map();
  counters = new Map();

  constructor(setupKeys) {
    // Values the scenarios write literally stay literal.
    for (const literal of LITERALS) this.names.set(literal, undefined);
    for (const [name, key] of Object.entries(setupKeys)) {
      this.names.set(key.id, `keyId:${name}`);
      this.names.set(key.key, `key:${name}`);
    }
  }

  #name(base, value) {
    let name = this.names.get(value);
    if (name === undefined) {
      const n = (this.counters.get(base) ?? 0) + 1;
      this.counters.set(base, n);
      name = `${base}${n}`;
      this.names.set(value, name);
    }
    return name;
  }

  value(value, key) {
    if (Array.isArray(value)) return value.map((v) => this.value(v));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.value(v, k)]));
    }
    if (typeof value !== "string") return value;
    if (ANY_FIELDS.has(key)) return "<any>";
    if (ISO.test(value)) return "<time>";
    if (this.names.has(value))
      return this.names.get(value) === undefined ? value : `<${this.names.get(value)}>`;
    if (UUID.test(value)) return `<${this.#name("event", value)}>`;
    if (APPROVAL.test(value)) return `<${this.#name("approval", value)}>`;
    if (DELEGATION.test(value)) return `<${this.#name("delegation", value)}>`;
    if (key === "token" && value.startsWith("eyJ")) return `<${this.#name("token", value)}>`;
    if (SECRET_KEY.test(value)) return `<${this.#name("newKey", value)}>`;
    if ((key === "id" || key === "keyId") && /^[0-9a-f]{16}$/.test(value))
      return `<${this.#name("keyId", value)}>`;
    if (key === "nextCursor") return `<${this.#name("cursor", value)}>`;
    let text = value.replace(ISO_IN_TEXT, "<time>");
    for (const [known, name] of this.names) {
      if (name !== undefined && known.length >= 8 && text.includes(known))
        text = text.split(known).join(`<${name}>`);
    }
    return text;
  }

  /** Fills `<key:NAME>` and `<NAME>` in a request from what responses bound. */
  fill(value, bound) {
    if (Array.isArray(value)) return value.map((v) => this.fill(v, bound));
    if (value !== null && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.fill(v, bound)]));
    }
    if (typeof value !== "string") return value;
    return value.replace(/<([A-Za-z0-9:_-]+)>/g, (all, name) => {
      if (!bound.has(name)) throw new Error(`placeholder ${all} used before a response bound it`);
      return bound.get(name);
    });
  }
}

async function record(scenario) {
  const dir = mkdtempSync(join(tmpdir(), "aa-record-"));
  const setup = { policy: POLICY, keys: KEYS, ...scenario.setup };
  const gateway = await createGateway({
    policy: setup.policy,
    database: `sqlite:${join(dir, "gateway.db")}`,
    ...(setup.bodyLimit ? { bodyLimit: setup.bodyLimit } : {}),
    keyCacheMs: 0,
  });
  try {
    const created = {};
    for (const [name, spec] of Object.entries(setup.keys)) {
      created[name] = await createKey(gateway.store, {
        kind: spec.kind,
        orgId: spec.org,
        ...(spec.agentId ? { agentId: spec.agentId } : {}),
        ...(spec.name ? { name: spec.name } : {}),
      });
    }
    const base = await gateway.listen({ port: 0 });
    const normaliser = new Normaliser(created);
    const exchanges = [];
    for (const [name, request] of scenario.exchanges) {
      const bound = new Map([...normaliser.names].map(([value, placeholder]) => [placeholder, value]));
      const filled = normaliser.fill(request, bound);
      const headers = { ...filled.headers };
      let body;
      if (filled.rawBody !== undefined) body = filled.rawBody;
      else if (filled.body !== undefined) {
        body = JSON.stringify(filled.body);
        headers["content-type"] = "application/json";
      }
      const response = await fetch(base + filled.path, { method: filled.method, headers, body });
      const text = await response.text();
      let responseBody;
      try {
        responseBody = JSON.parse(text);
      } catch {
        throw new Error(`${scenario.name} / ${name}: not JSON (${response.status}): ${text.slice(0, 200)}`);
      }
      exchanges.push({
        name,
        request,
        response: { status: response.status, body: normaliser.value(responseBody) },
      });
    }
    const fixture = { name: scenario.name, description: scenario.description, setup, exchanges };
    writeFileSync(
      join(scenario.pending ? pendingOut : out, `${scenario.name}.json`),
      `${JSON.stringify(fixture, null, 2)}\n`,
    );
    console.log(`${scenario.name}: ${exchanges.length} exchanges`);
  } finally {
    await gateway.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const scenario of scenarios) await record(scenario);
if (process.env.AA_FIXTURES_OUT === undefined) {
  const biome = new URL("../../../node_modules/.bin/biome", import.meta.url).pathname;
  execFileSync(biome, ["format", "--write", out], { stdio: "inherit" });
}
