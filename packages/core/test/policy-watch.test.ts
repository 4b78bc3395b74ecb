import { mkdtempSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { type AssemblyContext, ConfigurationError, initAssembly } from "../src/index.js";

const READS_ONLY = `version: 1
default: deny
policies:
  - { name: reads, action: "read.*", effect: allow }
`;
const READS_AND_WRITES = `${READS_ONLY}  - { name: writes, action: "write.*", effect: allow }
`;

let context: AssemblyContext | undefined;
afterEach(async () => {
  await context?.shutdown();
  context = undefined;
});

/** Calls `write.file` until the decision is `status` (the watcher reacts asynchronously); bounded. */
async function decisionBecomes(assembly: AssemblyContext, status: string): Promise<string> {
  let last = "";
  for (let attempt = 0; attempt < 200; attempt++) {
    last = (await assembly.canI("write.file")).status;
    if (last === status) return last;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return last;
}

function captureWarnings(): { messages: string[]; stop(): void } {
  const messages: string[] = [];
  const onWarning = (warning: Error & { code?: string }) => {
    if (warning.code === "AA_POLICY_RELOAD_FAILED") messages.push(warning.message);
  };
  process.on("warning", onWarning);
  return { messages, stop: () => process.off("warning", onWarning) };
}

describe("watchPolicy", () => {
  it("puts an edited policy file in force for the next call and records the change", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aa-watch-"));
    const file = join(dir, "aa.policy.yaml");
    writeFileSync(file, READS_ONLY);
    context = await initAssembly({
      agent: { id: "bot" },
      root: dir,
      policy: file,
      store: join(dir, "assembly.db"),
      adapters: [],
      watchPolicy: true,
    });
    expect((await context.execute("write.file")).status).toBe("denied");

    writeFileSync(file, READS_AND_WRITES);
    expect(await decisionBecomes(context, "executed")).toBe("executed");
    expect((await context.execute("write.file")).status).toBe("executed");
    expect((await context.policies()).map((p) => p.name)).toEqual(["reads", "writes"]);

    // An editor that writes a new file and renames it over the old one is seen too.
    writeFileSync(join(dir, "aa.policy.yaml.tmp"), READS_ONLY);
    renameSync(join(dir, "aa.policy.yaml.tmp"), file);
    expect(await decisionBecomes(context, "denied")).toBe("denied");

    const page = await context.audit({ limit: 100 });
    const changes = page.items.filter((e) => e.kind === "policy.changed");
    expect(changes).toHaveLength(2);
    expect(changes[0]).toMatchObject({ agent: `policy-file:${file}` });
    expect(await context.verify()).toMatchObject({ chainValid: true });
  });

  it("keeps the last good policy, with a warning, while the file does not load", async () => {
    const dir = mkdtempSync(join(tmpdir(), "aa-watch-"));
    const file = join(dir, "aa.policy.yaml");
    writeFileSync(file, READS_AND_WRITES);
    context = await initAssembly({
      agent: { id: "bot" },
      root: dir,
      policy: file,
      store: ":memory:",
      adapters: [],
      watchPolicy: true,
    });
    const warnings = captureWarnings();
    try {
      writeFileSync(file, "version: 1\ndefault: maybe\npolicies: [\n");
      for (let attempt = 0; attempt < 200 && warnings.messages.length === 0; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      expect(warnings.messages[0]).toMatch(/did not load; the previous policy stays in force/);
      expect((await context.execute("write.file")).status).toBe("executed");
      const changes = (await context.audit({ limit: 100 })).items.filter((e) => e.kind === "policy.changed");
      expect(changes).toEqual([]);
    } finally {
      warnings.stop();
    }
  });

  it("is refused with an inline policy or a gateway, and must be a boolean", async () => {
    const inline = initAssembly({
      agent: { id: "bot" },
      policy: { version: 1, default: "deny", policies: [] },
      store: ":memory:",
      adapters: [],
      watchPolicy: true,
    });
    await expect(inline).rejects.toThrow(ConfigurationError);
    await expect(inline).rejects.toThrow(/watchPolicy needs a policy file/);
    const notBoolean = initAssembly({
      agent: { id: "bot" },
      policy: { version: 1, default: "deny", policies: [] },
      store: ":memory:",
      adapters: [],
      watchPolicy: "yes" as unknown as boolean,
    });
    await expect(notBoolean).rejects.toThrow(/watchPolicy must be true or false/);
    const remote = initAssembly({
      gatewayUrl: "http://127.0.0.1:9",
      apiKey: "aa_agent_x_y",
      adapters: [],
      watchPolicy: true,
    });
    await expect(remote).rejects.toThrow(/watchPolicy applies to the embedded gate only/);
  });
});
