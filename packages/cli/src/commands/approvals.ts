import { userInfo } from "node:os";
import type { Approval, ApprovalState } from "@aa/engine";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";
import { addStateOptions, type StateOptions, withState } from "../state.js";

const STATES: ApprovalState[] = ["pending", "approved", "denied", "expired"];

function row(a: Approval): Record<string, unknown> {
  return {
    id: a.id,
    agent: a.agentId,
    action: a.actionType,
    state: a.state,
    created: a.createdAt,
    expires: a.expiresAt,
    policy: a.policyName ?? "",
  };
}

function defaultReviewer(): string {
  try {
    return `operator:${userInfo().username}`;
  } catch {
    return "operator";
  }
}

export function registerApprovals(program: Command, printer: () => Printer): void {
  const approvals = program
    .command("approvals")
    .description("list and decide actions held for human approval");

  addStateOptions(
    approvals
      .command("list")
      .description("list approvals")
      .option("--state <state>", `one of ${STATES.join(", ")}; all when omitted`),
  ).action(async (opts: StateOptions & { state?: string }) => {
    const p = printer();
    if (opts.state !== undefined && !STATES.includes(opts.state as ApprovalState)) {
      throw new CliError(`--state must be one of ${STATES.join(", ")}`, ExitCode.USAGE);
    }
    const list = await withState(opts, (state) =>
      state.listApprovals(opts.state ? { state: opts.state as ApprovalState } : {}),
    );
    p.data(list, () => p.table(list.map(row)));
  });

  addStateOptions(approvals.command("show").description("show one approval").argument("<id>")).action(
    async (id: string, opts: StateOptions) => {
      const p = printer();
      const approval = await withState(opts, (state) => state.getApproval(id));
      if (!approval) throw new CliError(`no approval ${id}`, ExitCode.NOT_FOUND);
      p.data(approval, () => {
        for (const [k, v] of Object.entries(approval))
          p.out(`${k.padEnd(14)} ${typeof v === "string" ? v : JSON.stringify(v)}`);
      });
    },
  );

  for (const verdict of ["approve", "deny"] as const) {
    addStateOptions(
      approvals
        .command(verdict)
        .description(verdict === "approve" ? "approve a held action (it runs once)" : "deny a held action")
        .argument("<id>")
        .option(
          "--reviewer <name>",
          "who decides (recorded in the audit trail; with --gateway the API key's principal is recorded instead)",
          defaultReviewer(),
        )
        .option("--reason <text>", "why (the agent sees it on a denial)"),
    ).action(async (id: string, opts: StateOptions & { reviewer: string; reason?: string }) => {
      const p = printer();
      const decided = await withState(opts, (state) =>
        verdict === "approve"
          ? state.approve(id, opts.reviewer, opts.reason)
          : state.deny(id, opts.reviewer, opts.reason),
      );
      p.data(decided, () =>
        p.out(
          `${verdict === "approve" ? color.green("approved") : color.red("denied")} ${decided.id} (${decided.actionType} by ${decided.agentId})`,
        ),
      );
    });
  }
}
