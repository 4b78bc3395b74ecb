/**
 * `aa keys create|list|revoke`: API keys of the gateway, managed offline against its database (the
 * bootstrap path: the first admin key cannot come from the API). Keys are shown once; only their
 * hash is stored.
 */
import { existsSync } from "node:fs";
import type { ApiKeyInfo } from "@aa/gateway";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { DEFAULT_DATABASE } from "./gateway.js";

type GatewayModule = typeof import("@aa/gateway");

function row(k: ApiKeyInfo): Record<string, unknown> {
  return {
    id: k.id,
    kind: k.kind,
    org: k.orgId,
    agent: k.agentId ?? "",
    name: k.name ?? "",
    created: k.createdAt,
    revoked: k.revokedAt ?? "",
  };
}

/** Opens the gateway's key tables; `mustExist` refuses to create a SQLite file (reading never creates). */
async function withKeyStore<T>(
  database: string,
  mustExist: boolean,
  fn: (store: Awaited<ReturnType<GatewayModule["openGatewayStore"]>>, gw: GatewayModule) => Promise<T>,
): Promise<T> {
  const gw = await import("@aa/gateway");
  const location = gw.parseDatabase(database);
  if (location.kind === "memory") {
    throw new CliError(
      "aa keys needs a database that outlives the command: sqlite:<file> or postgres://",
      ExitCode.USAGE,
    );
  }
  if (mustExist && location.kind === "sqlite" && !existsSync(location.path)) {
    throw new CliError(
      `no gateway database at ${location.path}; pass --database sqlite:<file> or a postgres:// URL (default ${DEFAULT_DATABASE})`,
      ExitCode.NOT_FOUND,
    );
  }
  const store = await gw.openGatewayStore(location);
  try {
    return await fn(store, gw);
  } finally {
    await store.close();
  }
}

const databaseOption = (command: Command) =>
  command.option(
    "--database <url>",
    "the gateway's database: sqlite:<file> or a postgres:// URL",
    DEFAULT_DATABASE,
  );

export function registerKeys(program: Command, printer: () => Printer): void {
  const keys = program
    .command("keys")
    .description("create, list and revoke the gateway's API keys (offline, on its database)");

  databaseOption(
    keys
      .command("create")
      .description("create an API key and print it once (only its hash is stored)")
      .requiredOption(
        "--kind <kind>",
        "agent (acts as one agent), operator (approvals, controls, audit) or admin (operator + keys + policy)",
      )
      .option("--org <org>", "the organisation the key belongs to", "default")
      .option("--agent <agent-id>", "for --kind agent: the agent the key acts as")
      .option(
        "--name <name>",
        "who holds it (shown in lists; an operator's name is the reviewer in the audit)",
      ),
  ).action(async (opts: { kind: string; org: string; agent?: string; name?: string; database: string }) => {
    const p = printer();
    if (opts.kind === "agent" && opts.agent === undefined) {
      throw new CliError(
        "aa keys create --kind agent needs --agent <agent-id>: the agent the key acts as",
        ExitCode.USAGE,
      );
    }
    const created = await withKeyStore(opts.database, false, (store, gw) =>
      gw.createKey(store, {
        kind: opts.kind as "agent" | "operator" | "admin",
        orgId: opts.org,
        ...(opts.agent !== undefined ? { agentId: opts.agent } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
      }),
    );
    p.data(created, () => {
      p.out(
        `created ${created.kind} key ${created.id} for org ${created.orgId}${created.agentId ? ` (agent ${created.agentId})` : ""}`,
      );
      p.out(color.bold(created.key));
      p.out(color.dim("this is the only time the key is shown; store it as a secret (e.g. AA_API_KEY)"));
    });
  });

  databaseOption(
    keys
      .command("list")
      .description("list API keys (never their secrets)")
      .option("--org <org>", "only this organisation"),
  ).action(async (opts: { org?: string; database: string }) => {
    const p = printer();
    const list = await withKeyStore(opts.database, true, async (store, gw) =>
      (await store.listKeys(opts.org)).map(gw.keyInfo),
    );
    p.data(list, () => p.table(list.map(row)));
  });

  databaseOption(
    keys
      .command("revoke")
      .description("revoke an API key (gateways refuse it within their key cache time, 1 s by default)")
      .argument("<key-id>", "the key's id (the part after aa_<kind>_, as `aa keys list` shows)"),
  ).action(async (id: string, opts: { database: string }) => {
    const p = printer();
    const revoked = await withKeyStore(opts.database, true, async (store, gw) => {
      const found = await store.revokeKey(id, new Date().toISOString());
      return found ? gw.keyInfo(found) : undefined;
    });
    if (!revoked) throw new CliError(`no API key ${id}; see \`aa keys list\``, ExitCode.NOT_FOUND);
    p.data(revoked, () =>
      p.out(
        `${color.red("revoked")} ${revoked.kind} key ${revoked.id} (org ${revoked.orgId}) at ${revoked.revokedAt}`,
      ),
    );
  });
}
