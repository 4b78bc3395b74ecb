/** A gateway on loopback with a few keys, for route tests. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parsePolicy } from "@aa/policy";
import { afterAll } from "vitest";
import { createGateway, createKey, type Gateway, type GatewayOptions } from "../src/index.js";
import { contractProblems } from "./contract.js";

export const POLICY = parsePolicy(
  `version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when:
      - { field: metadata.pr_size, op: lt, value: 50 }
    otherwise: deny
  - { name: merges, action: pr.merge, effect: require_approval }
  - { name: reads, action: "read.*", effect: allow }
redact:
  - { path: "$.token", mode: mask }
`,
  { source: "gateway test" },
);

// biome-ignore lint/suspicious/noExplicitAny: response bodies are JSON, checked against the OpenAPI file
type Json = any;

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

export function sqliteDatabase(): string {
  const dir = mkdtempSync(join(tmpdir(), "aa-gateway-"));
  dirs.push(dir);
  return `sqlite:${join(dir, "gateway.db")}`;
}

export interface TestGateway {
  gateway: Gateway;
  url: string;
  keys: Record<"agent" | "otherAgent" | "operator" | "admin" | "globexAgent" | "globexOperator", string>;
  /** fetch with a key; JSON body in, JSON (or text) out; the response is checked against the OpenAPI file. */
  call(
    key: string | undefined,
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: Json; headers: Headers }>;
}

export async function startGateway(options: Partial<GatewayOptions> = {}): Promise<TestGateway> {
  const gateway = await createGateway({
    policy: POLICY,
    database: sqliteDatabase(),
    keyCacheMs: 0,
    ...options,
  });
  const make = async (kind: "agent" | "operator" | "admin", orgId: string, agentId?: string, name?: string) =>
    (
      await createKey(gateway.store, {
        kind,
        orgId,
        ...(agentId ? { agentId } : {}),
        ...(name ? { name } : {}),
      })
    ).key;
  const keys = {
    agent: await make("agent", "acme", "release-bot"),
    otherAgent: await make("agent", "acme", "docs-bot"),
    operator: await make("operator", "acme", undefined, "ops-alice"),
    admin: await make("admin", "acme", undefined, "admin-ada"),
    globexAgent: await make("agent", "globex", "release-bot"),
    globexOperator: await make("operator", "globex", undefined, "ops-gus"),
  };
  const url = await gateway.listen({ port: 0 });
  return {
    gateway,
    url,
    keys,
    async call(key, method, path, body, headers = {}) {
      const response = await fetch(url + path, {
        method,
        headers: {
          ...(key ? { authorization: `Bearer ${key}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
          ...headers,
        },
        ...(body !== undefined ? { body: typeof body === "string" ? body : JSON.stringify(body) } : {}),
      });
      const text = await response.text();
      let parsed: unknown = text;
      if ((response.headers.get("content-type") ?? "").includes("application/json")) {
        parsed = JSON.parse(text);
        const problems = contractProblems(method, path, response.status, parsed);
        if (problems.length > 0) throw new Error(`response outside the OpenAPI file: ${problems.join("; ")}`);
      }
      return { status: response.status, body: parsed, headers: response.headers };
    },
  };
}

/** Reads server-sent events from a streaming response until `count` events arrived. */
export async function readEvents(
  response: Response,
  count: number,
): Promise<{ id: string; event: string; data: Json }[]> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  const events: { id: string; event: string; data: Json }[] = [];
  let buffer = "";
  while (events.length < count) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end = buffer.indexOf("\n\n");
    while (end !== -1) {
      const frame = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields = Object.fromEntries(
        frame
          .split("\n")
          .filter((line) => !line.startsWith(":") && line.includes(": "))
          .map((line) => [line.slice(0, line.indexOf(": ")), line.slice(line.indexOf(": ") + 2)]),
      );
      if (fields.data !== undefined)
        events.push({ id: fields.id, event: fields.event, data: JSON.parse(fields.data) });
      end = buffer.indexOf("\n\n");
    }
  }
  await reader.cancel();
  return events;
}
