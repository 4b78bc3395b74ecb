/** `aa agents`: the operator's kill switch per agent (contain, release) and what is contained now. */
import { userInfo } from "node:os";
import type { AgentControl } from "@aa/engine";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { addStateOptions, type StateOptions, withState } from "../state.js";

function row(c: AgentControl): Record<string, unknown> {
  return {
    agent: c.agentId,
    state: c.contained ? "contained" : "released",
    by: c.changedBy,
    since: c.changedAt,
    reason: c.reason ?? "",
  };
}

function defaultOperator(): string {
  try {
    return `operator:${userInfo().username}`;
  } catch {
    return "operator";
  }
}

export function registerAgents(program: Command, printer: () => Printer): void {
  const agents = program
    .command("agents")
    .description("contain (kill switch) or release an agent, and list the agents operators have contained");

  addStateOptions(
    agents.command("list").description("list every agent an operator has contained or released"),
  ).action(async (opts: StateOptions) => {
    const p = printer();
    const list = await withState(opts, (state) => state.listAgentControls());
    p.data(list, () => {
      if (list.length === 0) p.out("no agent has been contained");
      else p.table(list.map(row));
    });
  });

  for (const verb of ["contain", "release"] as const) {
    addStateOptions(
      agents
        .command(verb)
        .description(
          verb === "contain"
            ? "deny every tool call of an agent (and of agents acting for it) until released; audited"
            : "lift a containment; audited (an agent may not release itself)",
        )
        .argument("<agent-id>")
        .option("--reason <text>", "why (required; recorded in the audit trail and shown to the agent)")
        .option(
          "--operator <name>",
          "who acts (recorded in the audit trail; with --gateway the API key's principal is recorded instead)",
          defaultOperator(),
        ),
    ).action(async (agentId: string, opts: StateOptions & { reason?: string; operator: string }) => {
      const p = printer();
      if (opts.reason === undefined || opts.reason.trim() === "") {
        throw new CliError(
          `aa agents ${verb} needs --reason <text>: say why, for the audit trail`,
          ExitCode.USAGE,
        );
      }
      const reason = opts.reason;
      const control = await withState(opts, (state) =>
        verb === "contain"
          ? state.contain(agentId, opts.operator, reason)
          : state.release(agentId, opts.operator, reason),
      );
      p.data(control, () =>
        p.out(
          `${verb === "contain" ? color.red("contained") : color.green("released")} ${control.agentId} by ${control.changedBy}: ${control.reason ?? ""}`,
        ),
      );
    });
  }
}
