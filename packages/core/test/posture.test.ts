/** `posture()` on the governance client reads the embedded engine's chain and approvals. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { initAssembly } from "../src/index.js";

const fixtureRoot = new URL("./fixtures/host-app/", import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), "aa-core-posture-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("posture through the governance client", () => {
  it("scores the agent's recorded actions: uncovered and denied calls lower it", async () => {
    const policy = {
      version: 1,
      default: "deny",
      policies: [{ name: "reads", action: "read_*", effect: "allow" }],
    };
    const context = await initAssembly({
      agent: { id: "bot" },
      root: fixtureRoot,
      policy,
      store: join(dir, "posture.db"),
      adapters: [],
    });
    try {
      expect((await context.posture()).score).toBe(100);
      for (let i = 0; i < 3; i++) await context.execute("read_file");
      await context.execute("delete_repo");
      const posture = await context.posture();
      expect(posture.components.policyCoverage).toMatchObject({ score: 18.8 });
      expect(posture.components.anomalyRate).toMatchObject({ score: 18.8 });
      expect(posture.components.approvalHygiene.score).toBe(25);
      expect(posture.components.chainIntegrity.score).toBe(25);
      expect(posture.score).toBe(88);
      expect(posture.window.records).toBe(4);
    } finally {
      await context.shutdown();
    }
  });
});
