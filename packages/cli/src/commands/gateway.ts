/** `aa gateway start`: serve the HTTP API (wire contract v1) until SIGINT / SIGTERM. */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parsePolicy } from "@aa/policy";
import type { Command } from "commander";
import { CliError, ExitCode, type Printer } from "../output.js";
import { untilStopSignal } from "../signals.js";

export const DEFAULT_DATABASE = "sqlite:.aa/assembly.db";
export const DEFAULT_PORT = 7391;

function parsePort(text: string): number {
  const port = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new CliError(
      `--port must be an integer from 0 to 65535, got ${JSON.stringify(text)}`,
      ExitCode.USAGE,
    );
  }
  return port;
}

export function registerGateway(program: Command, printer: () => Printer): void {
  const gateway = program.command("gateway").description("run the shared Agent Assembly gateway (HTTP API)");
  gateway
    .command("start")
    .description("serve the gateway's HTTP API until SIGINT or SIGTERM (then close cleanly)")
    .option("--port <port>", "TCP port (0 picks a free one)", String(DEFAULT_PORT))
    .option("--host <host>", "interface to listen on (0.0.0.0 for every interface)", "127.0.0.1")
    .option("--database <url>", "sqlite:<file> or a postgres:// URL", DEFAULT_DATABASE)
    .option("--policy <file>", "policy every org enforces until an admin replaces it", "aa.policy.yaml")
    .option("--body-limit <bytes>", "largest accepted request body", String(1024 * 1024))
    .option("--no-console", "do not serve the operator web console at /console/")
    .option(
      "--allow-observe",
      "let agents ask for enforcementMode observe (their calls run; decisions are recorded as shadow events)",
    )
    .action(
      async (opts: {
        port: string;
        host: string;
        database: string;
        policy: string;
        bodyLimit: string;
        console: boolean;
        allowObserve?: boolean;
      }) => {
        const p = printer();
        const port = parsePort(opts.port);
        const bodyLimit = Number(opts.bodyLimit);
        if (!Number.isSafeInteger(bodyLimit) || bodyLimit < 1024) {
          throw new CliError("--body-limit must be an integer of at least 1024 (bytes)", ExitCode.USAGE);
        }
        const policyFile = resolve(opts.policy);
        if (!existsSync(policyFile)) {
          throw new CliError(
            `no policy at ${policyFile}; write one with \`aa init\` or pass --policy <file>`,
            ExitCode.NOT_FOUND,
          );
        }
        const policy = parsePolicy(readFileSync(policyFile, "utf8"), { source: opts.policy });
        const { createGateway } = await import("@aa/gateway");
        // The console is static files handed to the gateway (which does not depend on @aa/console).
        const consoleAssets = opts.console ? (await import("@aa/console")).consoleAssetsDir : undefined;
        const server = await createGateway({
          policy,
          database: opts.database,
          bodyLimit,
          ...(consoleAssets !== undefined ? { console: { assetsDir: consoleAssets } } : {}),
          ...(opts.allowObserve ? { agentEnforcementModes: ["observe" as const] } : {}),
        });
        let url: string;
        try {
          url = await server.listen({ port, host: opts.host });
        } catch (error) {
          await server.close().catch(() => undefined);
          throw new CliError(
            `cannot listen on ${opts.host}:${port}: ${(error as Error).message}`,
            ExitCode.ERROR,
          );
        }
        const keys = await server.store.listKeys();
        const consoleUrl = consoleAssets !== undefined ? `${url}/console/` : null;
        p.data({ url, database: server.database.kind, keys: keys.length, console: consoleUrl }, () => {
          p.out(`aa gateway listening on ${url} (${server.database.kind} database)`);
          if (consoleUrl !== null) p.out(`operator console: ${consoleUrl} (sign in with an operator key)`);
          if (keys.length === 0) {
            p.out(
              `no API keys yet: create an admin key with \`aa keys create --kind admin --org <org> --database ${opts.database}\``,
            );
          }
        });
        await untilStopSignal();
        await server.close();
        if (!p.json) p.err("aa gateway stopped (engines closed, checkpoints written)");
      },
    );
}
