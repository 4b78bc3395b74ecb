import { describe, expect, it } from "vitest";
import { openEngine } from "../src/index.js";
import { agent, policy } from "./helpers.js";

describe("approval ids", () => {
  it("carry 128 random bits behind a prefix, so a command line never reads one as an option", async () => {
    const engine = await openEngine({ policy, store: ":memory:" });
    const ids = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const held = await engine.decide({ agent, actionType: "pr.merge", args: { i } });
      expect(held.status).toBe("requested");
      ids.add(held.approvalId!);
    }
    expect(ids.size).toBe(300);
    for (const id of ids) expect(id).toMatch(/^apr_[A-Za-z0-9_-]{22}$/);
    await engine.close();
  });
});
