/**
 * A shared gateway in its own process, as `aa gateway start` runs one: SQLite database, the
 * example's policy, and two API keys (the release bot's agent key, an operator key). Prints one
 * JSON line `{ url, agentKey, operatorKey }` once listening; closes cleanly on SIGTERM / SIGINT.
 *
 *   node dist/gateway.js <database file> [port]
 */
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createGateway, createKey } from "@aa/gateway";
import { parsePolicy } from "@aa/policy";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const [database = join(root, ".aa", "gateway.db"), port = "0"] = process.argv.slice(2);
const policyFile = join(root, "aa.policy.yaml");
const policy = parsePolicy(readFileSync(policyFile, "utf8"), { source: policyFile });

const gateway = await createGateway({ policy, database: `sqlite:${database}` });
const agent = await createKey(gateway.store, { kind: "agent", orgId: "acme", agentId: "release-bot" });
const operator = await createKey(gateway.store, { kind: "operator", orgId: "acme", name: "ops-alice" });
const url = await gateway.listen({ port: Number(port), host: "127.0.0.1" });
process.stdout.write(`${JSON.stringify({ url, agentKey: agent.key, operatorKey: operator.key })}\n`);

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, () => {
    void gateway.close().then(() => process.exit(0));
  });
}
