/**
 * The Agent Assembly demo: an unchanged LangChain/LangGraph agent, governed by aa.policy.yaml.
 *   1. an allowed call (read_changes)
 *   2. a denied call (a 120-line PR): the agent reads the failed condition and splits the work
 *   3. a call held for approval (merge_release), approved by an operator through the real `aa` CLI
 *   4. the audit trail, printed and verified with `aa audit verify`
 */
import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { initAssembly } from "@aa/core";
import { createAgent } from "langchain";
import { ReleasePlannerModel } from "./model.js";
import { mergeRelease, openPr, readChanges } from "./tools.js";
import { bold, dim, green, heading, red, say, short, yellow } from "./ui.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const store = join(root, ".aa", "assembly.db");
const aaBin = join(dirname(createRequire(import.meta.url).resolve("@aa/cli/package.json")), "dist", "bin.js");
const exec = promisify(execFile);

/** Run the real `aa` CLI, as an operator would in a second terminal. */
async function aa(...args: string[]): Promise<string> {
  const { stdout } = await exec(process.execPath, [aaBin, ...args, "--store", store], {
    env: { ...process.env, NO_COLOR: "1" },
  });
  return stdout;
}

/** The operator: watches for held actions and approves them (in real life: a person, a console). */
function startOperator(): { stop(): void } {
  let stopped = false;
  const seen = new Set<string>();
  void (async () => {
    while (!stopped) {
      const pending = JSON.parse(await aa("--json", "approvals", "list", "--state", "pending")) as {
        id: string;
        actionType: string;
      }[];
      for (const approval of pending.filter((a) => !seen.has(a.id))) {
        seen.add(approval.id);
        say(
          yellow("⏸ held"),
          `${approval.actionType} waits for a human (approval ${approval.id.slice(0, 8)}…)`,
        );
        say(
          yellow("👤 operator"),
          dim(`$ aa approvals approve ${approval.id.slice(0, 8)}… --reason "release checklist done"`),
        );
        await aa(
          "approvals",
          "approve",
          approval.id,
          "--reviewer",
          "operator:demo",
          "--reason",
          "release checklist done",
        );
      }
      await new Promise((r) => setTimeout(r, 300));
    }
  })();
  return {
    stop() {
      stopped = true;
    },
  };
}

rmSync(join(root, ".aa"), { recursive: true, force: true }); // a fresh trail for each demo run

heading("Agent Assembly demo: a release bot under policy");
const assembly = await initAssembly({ mode: "sdk-only", agent: { id: "release-bot" }, root, store });
for (const adapter of assembly.adapters) {
  say(
    green("✔ hooked"),
    `${adapter.name} ${dim(`(${adapter.entryPoints.length} entry points, ${adapter.frameworkVersion ?? "?"})`)}`,
  );
}
say(
  dim("policy"),
  dim(`${join(root, "aa.policy.yaml")}: reads allowed, PRs < 50 lines, releases need review`),
);

heading("The agent works (scripted model, no API key)");
const operator = startOperator();
const agent = createAgent({ model: new ReleasePlannerModel({}), tools: [readChanges, openPr, mergeRelease] });
try {
  await agent.invoke({
    messages: [{ role: "user", content: "Ship release v2.4.0 with the pending changes." }],
  });
} finally {
  operator.stop();
}

heading("The audit trail (hash-chained, secrets redacted)");
const trail = await assembly.audit({ limit: 100 });
for (const event of trail.items) {
  const [label, paintLabel] =
    event.kind === "action"
      ? [event.status ?? "", event.status === "executed" ? green : event.status === "denied" ? red : yellow]
      : [event.kind.replace("approval.", ""), event.kind === "approval.approved" ? green : yellow];
  const detail =
    event.kind === "approval.approved" || event.kind === "approval.denied"
      ? `by ${event.agent}: ${event.reason ?? ""}`
      : event.kind === "approval.released"
        ? "the approved call ran, once"
        : event.denial_reason
          ? `${event.denial_reason} (${event.policy_name})`
          : `policy ${event.policy_name}`;
  console.log(
    `  #${String(event.seq).padEnd(3)}${paintLabel(label.padEnd(10))} ${event.action_type.padEnd(14)} ${detail.padEnd(42)} ${dim(short(event.args, 48))}`,
  );
}
await assembly.shutdown(); // writes a signed checkpoint

heading("Anyone can check it was not tampered with");
say(dim("$"), dim("aa audit verify"));
process.stdout.write((await aa("audit", "verify")).replace(/^/gm, "  "));
console.log(`\n${bold("Look around:")} ${dim(`npx -y pnpm@10.34.8 aa audit list --store ${store}`)}`);
