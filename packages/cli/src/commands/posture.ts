/** `aa posture`: the governance posture score of the store's organisation, with its components. */
import type { Posture } from "@aa/engine";
import type { Command } from "commander";
import { color, ExitCode, type Printer } from "../output.js";
import { addStateOptions, type StateOptions, withState } from "../state.js";

const LABELS = {
  policyCoverage: "policy coverage",
  approvalHygiene: "approval hygiene",
  anomalyRate: "anomaly rate",
  chainIntegrity: "chain integrity",
} as const;

export function registerPosture(program: Command, printer: () => Printer): void {
  addStateOptions(
    program
      .command("posture")
      .description(
        "governance posture 0-100: policy coverage, approval hygiene, anomaly rate (last 10 000 records) and chain integrity, 25 each; exit 3 when the chain is broken or the policy tampered",
      ),
  ).action(async (opts: StateOptions) => {
    const p = printer();
    const posture = await withState(opts, (state) => state.posture());
    p.data(posture, () => {
      const paint = posture.score >= 80 ? color.green : posture.score >= 50 ? color.yellow : color.red;
      p.out(`posture ${paint(String(posture.score))}/100 over ${posture.window.records} recent records`);
      // Lines rather than a table: the details are sentences and must not be cut.
      for (const key of Object.keys(LABELS) as (keyof typeof LABELS)[]) {
        const part = posture.components[key];
        p.out(`  ${LABELS[key].padEnd(17)} ${`${part.score}/25`.padStart(7)}  ${part.detail}`);
      }
      // Absent from gateways older than the policy integrity check.
      const integrity = posture.policyIntegrity as Posture["policyIntegrity"] | undefined;
      if (integrity?.state === "tampered") {
        p.out(
          color.red(`  policy TAMPERED: every call is denied POLICY_TAMPERED since ${integrity.detectedAt}`),
        );
        p.out(`  ${integrity.message}`);
      }
    });
    if (posture.components.chainIntegrity.score === 0) process.exitCode = ExitCode.VERIFY_FAILED;
  });
}
