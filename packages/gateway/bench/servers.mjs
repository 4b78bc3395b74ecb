// Child process for the HTTP benchmark: either a bare node:http JSON endpoint (the ceiling: parse
// the body, answer a small JSON object) or the gateway on a SQLite file (a durable audit record per
// decision). Prints "listening <url>" (and for the gateway "key <agent key>"), runs until SIGTERM.
// Usage: node servers.mjs bare | node servers.mjs gateway <sqlite file>
import { createServer } from "node:http";
import { compilePolicy, parsePolicy } from "@aa/policy";
import { createGateway, createKey } from "../dist/index.js";

const [mode, file] = process.argv.slice(2);

if (mode === "bare") {
  const server = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (chunk) => {
      body += chunk;
    });
    req.on("end", () => {
      const parsed = JSON.parse(body);
      const answer = JSON.stringify({
        status: "executed",
        actionType: parsed.actionType,
        conditionsEvaluated: [],
      });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(answer) });
      res.end(answer);
    });
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, "127.0.0.1", () =>
    process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`),
  );
  process.on("SIGTERM", () => server.close(() => process.exit(0)));
} else {
  const policy = compilePolicy(
    parsePolicy(`version: 1
default: deny
policies:
  - name: small-prs
    action: pr.open
    effect: allow
    when:
      - { field: metadata.pr_size, op: lt, value: 50 }
`),
  );
  const gateway = await createGateway({ policy, database: file === ":memory:" ? file : `sqlite:${file}` });
  const { key } = await createKey(gateway.store, { kind: "agent", orgId: "bench", agentId: "bench-bot" });
  const url = await gateway.listen({ port: 0, host: "127.0.0.1" });
  process.stdout.write(`key ${key}\nlistening ${url}\n`);
  process.on("SIGTERM", () => void gateway.close().then(() => process.exit(0)));
}
