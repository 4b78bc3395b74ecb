/**
 * `aa receipts verify <receipt> --jwks <file|url>`: check a signed action receipt offline, against
 * public keys obtained out of band (`aa audit keys`, or a gateway's `/v1/jwks.json`). No store and
 * no API key are needed: a receipt proves what was decided to anyone who holds the public keys.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { CliError, color, ExitCode, type Printer } from "../output.js";

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** The receipt itself, a file holding it, or `-` for stdin. */
function readReceipt(value: string): string {
  if (COMPACT_JWS.test(value)) return value;
  const source = value === "-" ? "stdin" : resolve(value);
  let text: string;
  try {
    text = readFileSync(value === "-" ? 0 : source, "utf8");
  } catch (error) {
    throw new CliError(
      `the receipt is neither a compact JWS nor a readable file (${source}: ${(error as Error).message})`,
      ExitCode.NOT_FOUND,
    );
  }
  const trimmed = text.trim();
  // A file may hold the gateway's answer `{ "receipt": "<jws>" }` as well as the bare JWS.
  if (trimmed.startsWith("{")) {
    try {
      const parsed = JSON.parse(trimmed) as { receipt?: unknown };
      if (typeof parsed.receipt === "string") return parsed.receipt;
    } catch {
      // Not JSON after all: verified as text below, which names the problem.
    }
  }
  return trimmed;
}

async function readJwks(value: string): Promise<{ keys: unknown[] }> {
  let text: string;
  if (/^https?:\/\//.test(value)) {
    let response: Response;
    try {
      response = await fetch(value, { signal: AbortSignal.timeout(30_000) });
    } catch (error) {
      throw new CliError(
        `cannot fetch the JWKS from ${value}: ${(error as Error).message}`,
        ExitCode.UNAVAILABLE,
      );
    }
    if (!response.ok)
      throw new CliError(`the JWKS URL ${value} answered HTTP ${response.status}`, ExitCode.UNAVAILABLE);
    text = await response.text();
  } else {
    try {
      text = readFileSync(resolve(value), "utf8");
    } catch (error) {
      throw new CliError(
        `cannot read the JWKS file ${resolve(value)}: ${(error as Error).message}`,
        ExitCode.NOT_FOUND,
      );
    }
  }
  let jwks: unknown;
  try {
    jwks = JSON.parse(text);
  } catch (error) {
    throw new CliError(`the JWKS ${value} is not JSON: ${(error as Error).message}`, ExitCode.USAGE);
  }
  if (!jwks || typeof jwks !== "object" || !Array.isArray((jwks as { keys?: unknown }).keys)) {
    throw new CliError(
      `the JWKS ${value} has no "keys" array (expected { "keys": [ ...JWK ] })`,
      ExitCode.USAGE,
    );
  }
  return jwks as { keys: unknown[] };
}

export function registerReceipts(program: Command, printer: () => Printer): void {
  const receipts = program.command("receipts").description("verify signed action receipts offline");
  receipts
    .command("verify")
    .description(
      "verify a receipt's signature and claims against public keys; exit 3 when it does not verify",
    )
    .argument(
      "<receipt>",
      "the receipt (compact JWS), a file holding it (or the gateway's JSON answer), or - for stdin",
    )
    .requiredOption(
      "--jwks <file|url>",
      "public keys: a JWKS file (aa audit keys) or URL (a gateway's /v1/jwks.json)",
    )
    .action(async (receiptArg: string, opts: { jwks: string }) => {
      const p = printer();
      const receipt = readReceipt(receiptArg);
      const jwks = await readJwks(opts.jwks);
      const { verifyReceipt } = await import("@aa/engine");
      const result = await verifyReceipt(receipt, jwks as Parameters<typeof verifyReceipt>[1]);
      p.data(result, () => {
        if (result.valid) {
          const c = result.claims;
          p.out(`${color.green("✔ receipt valid")}  signed by key ${result.kid}`);
          p.out(`  action        ${c.actionType} by ${c.agentId} (org ${c.org})`);
          p.out(`  status        ${c.status}${c.policyName ? ` by policy ${c.policyName}` : ""}`);
          p.out(`  audit event   ${c.auditEventId} (seq ${c.chain.seq})`);
          p.out(`  issued at     ${c.issuedAt}`);
          if (c.outcome) p.out(`  outcome       ${c.outcome.status}`);
        } else {
          p.out(`${color.red("✘ receipt INVALID")}  ${result.problem}`);
        }
      });
      if (!result.valid) process.exitCode = ExitCode.VERIFY_FAILED;
    });
}
