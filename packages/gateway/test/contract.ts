/**
 * The wire contract as tests use it: the OpenAPI file (responses are validated against it with
 * Ajv, JSON Schema 2020-12 as OpenAPI 3.1 uses) and the recorded fixtures.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import { parse } from "yaml";

const require = createRequire(import.meta.url);
export const contractDir = dirname(require.resolve("@aa/wire-contract/package.json"));

// biome-ignore lint/suspicious/noExplicitAny: the OpenAPI document is untyped YAML
type Json = any;

export const openapi: Json = parse(readFileSync(join(contractDir, "openapi.yaml"), "utf8"));

/** Replaces `#/components/...` refs (responses, parameters, schemas) by what they point to. */
export function deref(node: Json, seen: string[] = []): Json {
  if (Array.isArray(node)) return node.map((item) => deref(item, seen));
  if (node === null || typeof node !== "object") return node;
  if (typeof node.$ref === "string") {
    const ref: string = node.$ref;
    if (seen.includes(ref)) throw new Error(`recursive $ref ${ref}`);
    const target = ref
      .replace(/^#\//, "")
      .split("/")
      .reduce(
        (value: Json, key: string) => value?.[key.replaceAll("~1", "/").replaceAll("~0", "~")],
        openapi,
      );
    if (target === undefined) throw new Error(`unresolved $ref ${ref}`);
    return deref(target, [...seen, ref]);
  }
  return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, deref(v, seen)]));
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats.default(ajv);
const compiled = new Map<string, ValidateFunction>();

/** The OpenAPI path template (without /v1) that an actual request path matches. */
export function templateFor(path: string): string | undefined {
  const bare = path.split("?")[0]!.replace(/^\/v1/, "");
  for (const template of Object.keys(openapi.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "[^/]+")}$`);
    if (pattern.test(bare)) return template;
  }
  return undefined;
}

/**
 * Problems of one JSON response against the OpenAPI file (empty when it conforms): the route and
 * status must be described, and the body must match the described schema.
 */
export function contractProblems(method: string, path: string, status: number, body: unknown): string[] {
  const template = templateFor(path);
  if (template === undefined) {
    // Unknown routes answer the generic error shape.
    return status === 404 ? schemaProblems("#/components/schemas/Error", body) : [`no route for ${path}`];
  }
  const operation = openapi.paths[template][method.toLowerCase()];
  if (!operation) return status === 404 ? [] : [`${method} ${template} is not in the OpenAPI file`];
  const response = operation.responses[String(status)];
  if (!response) {
    // 401 / 403 / 404 / 413 / 415 / 500 / 503 are common to every authenticated route (info.description).
    if ([401, 403, 404, 413, 415, 500, 503].includes(status))
      return schemaProblems("#/components/schemas/Error", body);
    return [`${method} ${template} does not describe status ${status}`];
  }
  const resolved = deref(response);
  const schema = resolved.content?.["application/json"]?.schema;
  if (!schema) return [`${method} ${template} ${status} has no JSON schema`];
  const key = `${method} ${template} ${status}`;
  let validate = compiled.get(key);
  if (!validate) {
    validate = ajv.compile(schema);
    compiled.set(key, validate);
  }
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${key}: ${e.instancePath} ${e.message}`);
}

function schemaProblems(ref: string, body: unknown): string[] {
  let validate = compiled.get(ref);
  if (!validate) {
    validate = ajv.compile(deref({ $ref: ref }));
    compiled.set(ref, validate);
  }
  return validate(body) ? [] : (validate.errors ?? []).map((e) => `${ref}: ${e.instancePath} ${e.message}`);
}

export interface FixtureKey {
  kind: "agent" | "operator" | "admin";
  org: string;
  agentId?: string;
  name?: string;
}

export interface FixtureRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: unknown;
  rawBody?: string;
}

export interface Fixture {
  name: string;
  description: string;
  setup: { policy: Json; keys: Record<string, FixtureKey>; bodyLimit?: number };
  exchanges: { name: string; request: FixtureRequest; response: { status: number; body: unknown } }[];
}

/**
 * The recorded fixtures: `fixtures/` (replayed by the gateway and the client) and `pending/`
 * (replayed by the gateway only, until the client can send every exchange in them).
 */
export function loadFixtures(): Fixture[] {
  return ["fixtures", "pending"]
    .flatMap((folder) => {
      const dir = join(contractDir, folder);
      // pending/ is empty (so absent from git) whenever the client replays every fixture.
      if (!existsSync(dir)) return [];
      return readdirSync(dir)
        .filter((f) => f.endsWith(".json"))
        .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Fixture);
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}
