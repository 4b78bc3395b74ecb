/**
 * Replays a wire-contract fixture against a real gateway over loopback HTTP and reports every
 * difference from the recorded responses (after placeholder matching, see the fixture README)
 * and from the OpenAPI file.
 */
import { createGateway, createKey } from "../src/index.js";
import { contractProblems, type Fixture } from "./contract.js";

const PLACEHOLDER = /<([A-Za-z0-9:_-]+)>/g;
const UNBOUND = new Set(["time", "any"]);

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Placeholder matching; binds names in `bound` and returns the differences found. */
export function matchValue(
  expected: unknown,
  actual: unknown,
  bound: Map<string, unknown>,
  at: string,
): string[] {
  if (typeof expected === "string") {
    const whole = /^<([A-Za-z0-9:_-]+)>$/.exec(expected);
    if (whole) {
      const name = whole[1]!;
      if (actual === undefined) return [`${at}: missing (expected ${expected})`];
      if (UNBOUND.has(name)) return [];
      if (!bound.has(name)) {
        bound.set(name, actual);
        return [];
      }
      return JSON.stringify(bound.get(name)) === JSON.stringify(actual)
        ? []
        : [`${at}: ${JSON.stringify(actual)} but ${expected} is ${JSON.stringify(bound.get(name))}`];
    }
    if (PLACEHOLDER.test(expected)) {
      PLACEHOLDER.lastIndex = 0;
      if (typeof actual !== "string") return [`${at}: expected a string like ${JSON.stringify(expected)}`];
      const names: string[] = [];
      let source = "";
      let last = 0;
      for (const m of expected.matchAll(PLACEHOLDER)) {
        source += escapeRegExp(expected.slice(last, m.index));
        const name = m[1]!;
        if (!UNBOUND.has(name) && bound.has(name)) source += escapeRegExp(String(bound.get(name)));
        else {
          source += "(.+?)";
          names.push(name);
        }
        last = m.index + m[0].length;
      }
      source += escapeRegExp(expected.slice(last));
      const found = new RegExp(`^${source}$`, "s").exec(actual);
      if (!found) return [`${at}: ${JSON.stringify(actual)} does not match ${JSON.stringify(expected)}`];
      names.forEach((name, i) => {
        if (!UNBOUND.has(name) && !bound.has(name)) bound.set(name, found[i + 1]);
      });
      return [];
    }
  }
  if (Array.isArray(expected)) {
    if (!Array.isArray(actual) || actual.length !== expected.length) {
      return [`${at}: expected an array of ${expected.length}, got ${JSON.stringify(actual)?.slice(0, 300)}`];
    }
    return expected.flatMap((item, i) => matchValue(item, actual[i], bound, `${at}[${i}]`));
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual)) {
      return [`${at}: expected an object, got ${JSON.stringify(actual)?.slice(0, 300)}`];
    }
    const keys = new Set([...Object.keys(expected), ...Object.keys(actual)]);
    return [...keys].flatMap((key) =>
      key in expected
        ? matchValue(
            (expected as Record<string, unknown>)[key],
            (actual as Record<string, unknown>)[key],
            bound,
            `${at}.${key}`,
          )
        : [
            `${at}.${key}: unexpected field (${JSON.stringify((actual as Record<string, unknown>)[key])?.slice(0, 100)})`,
          ],
    );
  }
  return Object.is(expected, actual)
    ? []
    : [`${at}: ${JSON.stringify(actual)} instead of ${JSON.stringify(expected)}`];
}

function fill(value: unknown, bound: Map<string, unknown>, where: string): unknown {
  if (Array.isArray(value)) return value.map((v) => fill(v, bound, where));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v, bound, where)]));
  }
  if (typeof value !== "string") return value;
  return value.replace(PLACEHOLDER, (all, name: string) => {
    if (!bound.has(name)) throw new Error(`${where}: ${all} is used before a response bound it`);
    return String(bound.get(name));
  });
}

/** Replays `fixture` on a fresh gateway over `database`; resolves to every difference (empty: it conforms). */
export async function replayFixture(fixture: Fixture, database: string): Promise<string[]> {
  const gateway = await createGateway({
    policy: fixture.setup.policy,
    database,
    keyCacheMs: 0,
    ...(fixture.setup.bodyLimit ? { bodyLimit: fixture.setup.bodyLimit } : {}),
  });
  const problems: string[] = [];
  try {
    const bound = new Map<string, unknown>();
    for (const [name, spec] of Object.entries(fixture.setup.keys)) {
      const created = await createKey(gateway.store, {
        kind: spec.kind,
        orgId: spec.org,
        ...(spec.agentId ? { agentId: spec.agentId } : {}),
        ...(spec.name ? { name: spec.name } : {}),
      });
      bound.set(`key:${name}`, created.key);
      bound.set(`keyId:${name}`, created.id);
    }
    const base = await gateway.listen({ port: 0 });
    for (const exchange of fixture.exchanges) {
      const where = `${fixture.name} / ${exchange.name}`;
      const request = fill(exchange.request, bound, where) as Fixture["exchanges"][number]["request"];
      const headers: Record<string, string> = { ...request.headers };
      let body: string | undefined;
      if (request.rawBody !== undefined) body = request.rawBody;
      else if (request.body !== undefined) {
        body = JSON.stringify(request.body);
        headers["content-type"] = "application/json";
      }
      const response = await fetch(base + request.path, {
        method: request.method,
        headers,
        ...(body !== undefined ? { body } : {}),
      });
      const text = await response.text();
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        problems.push(`${where}: the response is not JSON: ${text.slice(0, 200)}`);
        continue;
      }
      if (response.status !== exchange.response.status) {
        problems.push(
          `${where}: status ${response.status} instead of ${exchange.response.status}: ${text.slice(0, 300)}`,
        );
      }
      problems.push(...matchValue(exchange.response.body, json, bound, where).map((p) => p));
      problems.push(
        ...contractProblems(request.method, request.path, response.status, json).map((p) => `${where}: ${p}`),
      );
    }
  } finally {
    await gateway.close();
  }
  return problems;
}
