/**
 * The client half of the wire contract: every fixture in @aa/wire-contract (recorded from a real
 * gateway, and replayed against one by the gateway's own tests) is replayed here from a loopback
 * server. For each exchange the client makes the call a user would make; the test asserts that the
 * request it sent is the recorded one (after placeholder substitution) and that the recorded
 * response was parsed: 2xx into the value the method returns, 4xx into an AssemblyError with the
 * recorded code and status.
 */
import { readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toWireBody } from "../src/gate/remote.js";
import { AssemblyError, GatewayClient } from "../src/index.js";
import { type LoopbackGateway, type RecordedRequest, startLoopbackGateway } from "./loopback-gateway.js";

const require = createRequire(import.meta.url);
const fixturesDir = join(dirname(require.resolve("@aa/wire-contract/package.json")), "fixtures");

interface Exchange {
  name: string;
  request: {
    method: string;
    path: string;
    headers?: Record<string, string>;
    body?: unknown;
    rawBody?: string;
  };
  response: { status: number; body?: unknown };
}
interface Fixture {
  name: string;
  setup: { keys?: Record<string, { kind: string }> };
  exchanges: Exchange[];
}

const fixtures = readdirSync(fixturesDir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .map((f) => JSON.parse(readFileSync(join(fixturesDir, f), "utf8")) as Fixture);

/** Synthetic values for placeholders, the same one for the same name (fixture README). */
function placeholderValues(fixture: Fixture) {
  const values = new Map<string, unknown>();
  Object.entries(fixture.setup.keys ?? {}).forEach(([name, key], i) => {
    const id = (i + 1).toString(16).padStart(16, "0");
    values.set(`key:${name}`, `aa_${key.kind}_${id}_${"ab".repeat(32)}`);
    values.set(`keyId:${name}`, id);
  });
  let counter = 0;
  const syntheticValue = (name: string): unknown => {
    if (name === "time") return "2026-01-01T00:00:00.000Z";
    if (name === "any") return "any-value";
    if (!values.has(name)) {
      counter++;
      const n = counter.toString(16).padStart(12, "0");
      values.set(
        name,
        /^event/.test(name)
          ? `0190aaaa-0000-7000-8000-${n}`
          : /^approval/.test(name)
            ? `apr_fixture${n}`
            : /^newKey/.test(name)
              ? `aa_agent_${n.padStart(16, "f")}_${"cd".repeat(32)}`
              : `${name}-${n}`,
      );
    }
    return values.get(name);
  };
  const substitute = (value: unknown): unknown => {
    if (typeof value === "string") {
      const whole = /^<([A-Za-z0-9:_-]+)>$/.exec(value);
      if (whole) return syntheticValue(whole[1]!);
      return value.replace(/<([A-Za-z0-9:_-]+)>/g, (_m, name: string) => String(syntheticValue(name)));
    }
    if (Array.isArray(value)) return value.map(substitute);
    if (value !== null && typeof value === "object")
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v)]));
    return value;
  };
  return substitute;
}

const ACTION_FIELDS = new Set([
  "actionType",
  "toolName",
  "framework",
  "args",
  "metadata",
  "dataAccessed",
  "toolCallId",
  "mcpServer",
  "traceId",
  "eventId",
  "enforcementMode",
  "dryRun",
  "failOpen",
]);

/**
 * The client call that makes this request, and how its result relates to the response body.
 * Undefined when no client method sends it (a raw malformed body, an unknown route).
 */
function clientCall(
  client: GatewayClient,
  request: {
    method: string;
    path: string;
    query: Record<string, string>;
    body: unknown;
    headers: Record<string, string>;
  },
): { call: () => Promise<unknown>; result: (body: unknown) => unknown } | undefined {
  const { method, path, query, body } = request;
  const same = (b: unknown) => b;
  const field = (name: string) => (b: unknown) => (b as Record<string, unknown>)[name];
  const route = `${method} ${path}`;
  const params = (pattern: RegExp) => pattern.exec(route)?.slice(1).map(decodeURIComponent);
  let m: string[] | undefined;
  if (route === "GET /v1/health") return { call: () => client.health(), result: same };
  if (route === "GET /v1/ready") return { call: () => client.ready(), result: same };
  if (route === "GET /v1/jwks.json") return { call: () => client.jwks(), result: same };
  if (route === "GET /v1/whoami") return { call: () => client.whoami(), result: same };
  if (route === "GET /v1/posture") return { call: () => client.posture(), result: same };
  if (route === "GET /v1/policies") return { call: () => client.policies(), result: same };
  if (route === "PUT /v1/policies")
    return {
      call: () => client.setPolicy((body as { policy: Record<string, unknown> }).policy),
      result: same,
    };
  if (route === "GET /v1/agents") return { call: () => client.listAgents(), result: field("agents") };
  if (route === "GET /v1/keys") return { call: () => client.listKeys(), result: field("keys") };
  if (route === "POST /v1/keys")
    return { call: () => client.createKey(body as Parameters<GatewayClient["createKey"]>[0]), result: same };
  m = params(/^DELETE \/v1\/keys\/([^/]+)$/);
  if (m) {
    const id = m[0]!;
    return { call: () => client.revokeKey(id), result: same };
  }
  if (route === "POST /v1/actions") {
    const delegationToken = request.headers["aa-delegation"];
    const options = delegationToken ? { delegationToken } : {};
    const fields = body as Record<string, unknown>;
    // A body the client's own types can express goes through the remote gate's mapping from a
    // DecisionRequest; a deliberately invalid one (wrong types, unknown fields) is sent as given.
    const expressible =
      fields !== null &&
      typeof fields === "object" &&
      typeof fields.actionType === "string" &&
      Object.keys(fields).every((k) => ACTION_FIELDS.has(k));
    const wire = expressible
      ? toWireBody({
          agent: { id: "ignored: the key names the agent" },
          ...(fields as { actionType: string }),
        })
      : (body as Parameters<GatewayClient["decide"]>[0]);
    return { call: () => client.decide(wire, options), result: same };
  }
  if (route === "GET /v1/approvals")
    return {
      call: () => client.listApprovals(query.state ? { state: query.state as "pending" } : {}),
      result: field("approvals"),
    };
  m = params(/^GET \/v1\/approvals\/([^/]+)\/wait$/);
  if (m) {
    const id = m[0]!;
    return { call: () => client.waitApproval(id, Number(query.timeoutMs)), result: same };
  }
  m = params(/^GET \/v1\/approvals\/([^/]+)$/);
  if (m) {
    const id = m[0]!;
    return { call: () => client.getApproval(id), result: same };
  }
  m = params(/^POST \/v1\/approvals\/([^/]+)\/(approve|deny|release)$/);
  if (m) {
    const id = m[0]!;
    const reason = (body as { reason?: string } | undefined)?.reason;
    if (m[1] === "approve") return { call: () => client.approve(id, reason), result: same };
    if (m[1] === "deny") return { call: () => client.deny(id, reason), result: same };
    return { call: () => client.releaseApproval(id), result: same };
  }
  if (route === "GET /v1/audit")
    return {
      call: () =>
        client.audit({
          ...(query.cursor === undefined ? {} : { cursor: query.cursor }),
          ...(query.limit === undefined ? {} : { limit: Number(query.limit) }),
          ...(query.actionType === undefined ? {} : { actionType: query.actionType }),
          ...(query.traceId === undefined ? {} : { traceId: query.traceId }),
          // A value the gateway refuses is sent as given (the client does not pre-validate it).
          ...(query.order === undefined ? {} : { order: query.order as "asc" | "desc" }),
        }),
      result: same,
    };
  if (route === "GET /v1/audit/verify") return { call: () => client.verify(), result: same };
  m = params(/^POST \/v1\/audit\/([^/]+)\/outcome$/);
  if (m) {
    const id = m[0]!;
    return {
      call: () => client.reportOutcome(id, body as Parameters<GatewayClient["reportOutcome"]>[1]),
      result: same,
    };
  }
  m = params(/^GET \/v1\/receipts\/([^/]+)$/);
  if (m) {
    const id = m[0]!;
    return { call: () => client.receipt(id), result: field("receipt") };
  }
  if (route === "POST /v1/delegations") {
    const delegationToken = request.headers["aa-delegation"];
    return {
      call: () =>
        client.delegate(
          body as Parameters<GatewayClient["delegate"]>[0],
          delegationToken ? { delegationToken } : {},
        ),
      result: same,
    };
  }
  if (route === "GET /v1/delegations") {
    const delegationToken = request.headers["aa-delegation"];
    return {
      call: () =>
        client.listDelegations(
          {
            // Sent as recorded, even a role the gateway refuses (the 400 is part of the contract).
            ...(query.role === undefined ? {} : { role: query.role as "parent" }),
            ...(query.activeOnly === undefined ? {} : { activeOnly: query.activeOnly === "true" }),
            ...(query.agent === undefined ? {} : { agent: query.agent }),
          },
          delegationToken ? { delegationToken } : {},
        ),
      result: field("delegations"),
    };
  }
  m = params(/^DELETE \/v1\/delegations\/([^/]+)$/);
  if (m) {
    const id = m[0]!;
    const delegationToken = request.headers["aa-delegation"];
    return {
      call: () => client.revokeDelegation(id, delegationToken ? { delegationToken } : {}),
      result: same,
    };
  }
  m = params(/^POST \/v1\/agents\/([^/]+)\/(contain|release)$/);
  if (m) {
    const [id, verb] = m as [string, string];
    const reason = (body as { reason: string }).reason;
    return {
      call: () => (verb === "contain" ? client.contain(id, reason) : client.releaseAgent(id, reason)),
      result: same,
    };
  }
  return undefined;
}

/** The parts of a request the contract fixes, normalised: a POST without a body ≡ `{}`. */
function normalised(request: {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  authorization?: string;
  delegation?: string;
}) {
  const body =
    request.body === undefined && request.method !== "GET" && request.method !== "DELETE" ? {} : request.body;
  return { ...request, body };
}

let gateway: LoopbackGateway;
let next: { status: number; body: unknown } = { status: 500, body: {} };
beforeAll(async () => {
  gateway = await startLoopbackGateway(() => ({ status: next.status, body: next.body }));
});
afterAll(() => gateway.close());

describe("wire contract fixtures, replayed by the client", () => {
  for (const fixture of fixtures) {
    it(`${fixture.name}: sends the recorded requests and parses the recorded responses`, async () => {
      const substitute = placeholderValues(fixture);
      const clients = new Map<string, GatewayClient>();
      const clientFor = (authorization: string | undefined) => {
        const key = authorization?.replace(/^Bearer /, "");
        const id = key ?? "(none)";
        if (!clients.has(id))
          clients.set(
            id,
            new GatewayClient({
              url: gateway.url,
              ...(key === undefined ? {} : { apiKey: key }),
              retryDelaysMs: [],
            }),
          );
        return clients.get(id)!;
      };
      let replayed = 0;
      const skipped: string[] = [];
      for (const exchange of fixture.exchanges) {
        const recorded = substitute(exchange.request) as Exchange["request"];
        const url = new URL(recorded.path, "http://fixture");
        const headers = Object.fromEntries(
          Object.entries(recorded.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
        );
        const expected = {
          method: recorded.method,
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          body: recorded.body,
          headers,
        };
        const call =
          recorded.rawBody === undefined ? clientCall(clientFor(headers.authorization), expected) : undefined;
        if (!call) {
          skipped.push(exchange.name);
          continue;
        }
        const served = substitute(exchange.response.body);
        next = { status: exchange.response.status, body: served };
        const before = gateway.requests.length;
        const outcome = await call.call().then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );
        const sent = gateway.requests.slice(before);
        expect(sent, exchange.name).toHaveLength(1);
        const got = sent[0] as RecordedRequest;
        const sentBody =
          // The client adds an idempotency key to every recorded decision: normalised away.
          expected.path === "/v1/actions" &&
          got.body !== null &&
          typeof got.body === "object" &&
          !Array.isArray(got.body) &&
          (expected.body as { eventId?: unknown } | undefined)?.eventId === undefined
            ? Object.fromEntries(Object.entries(got.body as object).filter(([k]) => k !== "eventId"))
            : got.body;
        expect(
          normalised({
            method: got.method,
            path: got.path,
            query: got.query,
            body: sentBody,
            ...(got.headers.authorization === undefined ? {} : { authorization: got.headers.authorization }),
            ...(got.headers["aa-delegation"] === undefined
              ? {}
              : { delegation: got.headers["aa-delegation"] as string }),
          }),
          exchange.name,
        ).toEqual(
          normalised({
            method: expected.method,
            path: expected.path,
            query: expected.query,
            body: expected.body,
            ...(headers.authorization === undefined ? {} : { authorization: headers.authorization }),
            ...(headers["aa-delegation"] === undefined ? {} : { delegation: headers["aa-delegation"] }),
          }),
        );
        if (exchange.response.status < 300) {
          expect("value" in outcome ? outcome.value : outcome.error, exchange.name).toEqual(
            call.result(served),
          );
        } else {
          const error = "error" in outcome ? outcome.error : undefined;
          expect(error, exchange.name).toBeInstanceOf(AssemblyError);
          const wireError = (served as { error: { code: string; message: string } }).error;
          const code = exchange.response.status >= 500 ? "GATE_UNAVAILABLE" : wireError.code;
          expect(error, exchange.name).toMatchObject({ code });
          if (exchange.response.status < 500)
            expect(error, exchange.name).toMatchObject({
              message: wireError.message,
              details: { status: exchange.response.status },
            });
        }
        replayed++;
      }
      // Only what no client method can send is skipped (a raw malformed body, an unknown route).
      expect(skipped.length, `skipped: ${skipped.join("; ")}`).toBeLessThanOrEqual(1);
      expect(replayed).toBeGreaterThan(0);
    });
  }
});
