/**
 * `aa proxy`: the egress proxy (an HTTP forward proxy on loopback) that puts every outgoing request
 * of a process and its children (HTTP_PROXY / HTTPS_PROXY) to the gate, until SIGINT / SIGTERM.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parsePolicy } from "@aa/policy";
import type { Command } from "commander";
import { CliError, ExitCode, type Printer } from "../output.js";
import { untilStopSignal } from "../signals.js";
import { DEFAULT_STORE } from "../store.js";
import { DEFAULT_DATABASE } from "./gateway.js";

/** Same as `DEFAULT_PROXY_PORT` of @aa/gateway, which is imported only when the proxy starts. */
const DEFAULT_PROXY_PORT = 7392;

function parseInteger(option: string, text: string, min: number, max: number): number {
  const value = /^\d+$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CliError(
      `${option} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`,
      ExitCode.USAGE,
    );
  }
  return value;
}

export function registerProxy(program: Command, printer: () => Printer): void {
  program
    .command("proxy")
    .description(
      "run the egress proxy: every HTTP request and HTTPS (CONNECT) tunnel through it is decided by the policy (action http.request) and audited",
    )
    .option("--port <port>", "TCP port (0 picks a free one)", String(DEFAULT_PROXY_PORT))
    .option("--host <host>", "interface to listen on", "127.0.0.1")
    .option(
      "--store <file>",
      `embedded SQLite store to record decisions in (an agent's own store; default ${DEFAULT_STORE})`,
    )
    .option(
      "--database <url>",
      `sqlite:<file> or a postgres:// URL shared with gateways (default ${DEFAULT_DATABASE})`,
    )
    .option(
      "--policy <file>",
      "policy to enforce (an org's policy stored in the database wins)",
      "aa.policy.yaml",
    )
    .option(
      "--agent <id>",
      "decide every request as this agent, no credentials asked (loopback only); without it, clients send an agent API key as the proxy password",
    )
    .option("--org <org>", "org of --agent", "default")
    .option(
      "--approval-wait <ms>",
      "how long a request held for approval waits for a reviewer before it is refused with the approval id (at most 300000)",
      "0",
    )
    .action(
      async (opts: {
        port: string;
        host: string;
        store?: string;
        database?: string;
        policy: string;
        agent?: string;
        org: string;
        approvalWait: string;
      }) => {
        const p = printer();
        const port = parseInteger("--port", opts.port, 0, 65535);
        const approvalWaitMs = parseInteger("--approval-wait", opts.approvalWait, 0, 300_000);
        if (opts.store !== undefined && opts.database !== undefined) {
          throw new CliError(
            "--store and --database both name where decisions are recorded; pass one",
            ExitCode.USAGE,
          );
        }
        if (opts.agent !== undefined && opts.agent.trim() === "") {
          throw new CliError("--agent must be a non-empty agent id", ExitCode.USAGE);
        }
        if (opts.org !== "default" && opts.agent === undefined) {
          throw new CliError(
            "--org applies to --agent; without --agent, each client's API key names its org",
            ExitCode.USAGE,
          );
        }
        const database =
          opts.store !== undefined ? `sqlite:${resolve(opts.store)}` : (opts.database ?? DEFAULT_DATABASE);
        const policyFile = resolve(opts.policy);
        if (!existsSync(policyFile)) {
          throw new CliError(
            `no policy at ${policyFile}; write one with \`aa init\` or pass --policy <file>`,
            ExitCode.NOT_FOUND,
          );
        }
        const policy = parsePolicy(readFileSync(policyFile, "utf8"), { source: opts.policy });
        const { createEgressProxy } = await import("@aa/gateway");
        const proxy = await createEgressProxy({
          policy,
          database,
          approvalWaitMs,
          ...(opts.agent === undefined ? {} : { agent: opts.agent, orgId: opts.org }),
        });
        let url: string;
        try {
          url = await proxy.listen({ port, host: opts.host });
        } catch (error) {
          await proxy.close().catch(() => undefined);
          const code = (error as { code?: string }).code;
          throw new CliError(
            `cannot listen on ${opts.host}:${port}: ${(error as Error).message}`,
            code === "INVALID_OPTIONS" ? ExitCode.USAGE : ExitCode.ERROR,
          );
        }
        const identity = opts.agent === undefined ? "agent-keys" : `agent:${opts.agent}`;
        const agentKeys =
          opts.agent === undefined
            ? (await proxy.store.listKeys()).filter((k) => k.kind === "agent").length
            : 0;
        p.data({ url, database: proxy.database.kind, identity }, () => {
          p.out(
            `aa proxy listening on ${url} (${proxy.database.kind} database; ${
              opts.agent === undefined
                ? "clients authenticate with their agent API key"
                : `every request is agent "${opts.agent}"`
            })`,
          );
          const withKey = opts.agent === undefined ? url.replace("://", "://agent:<agent-key>@") : url;
          p.out(`route a process through it: HTTP_PROXY=${withKey} HTTPS_PROXY=${withKey} <command>`);
          if (opts.agent === undefined && agentKeys === 0) {
            p.out(
              `no agent keys yet: create one with \`aa keys create --kind agent --org <org> --agent <id> --database ${database}\``,
            );
          }
        });
        await untilStopSignal();
        await proxy.close();
        if (!p.json) p.err("aa proxy stopped");
      },
    );
}
