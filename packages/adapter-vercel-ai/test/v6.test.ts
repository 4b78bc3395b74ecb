/**
 * ai v6 (ESM and CommonJS builds) under the real `initAssembly`, in a temporary host app whose `ai`
 * is 6.0.322: v6 has no `toolApproval` option, so the adapter governs the `tools` map.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createV6Host, type V6Host } from "./v6-host.js";

type ToolOutput = { toolCallId: string; toolName: string; output: { type: string; value?: unknown } };
type Case = { ran: string[]; step1: ToolOutput[] };

const DENIAL =
  'Agent Assembly denied tool "transfer" (CONDITIONS_DENIED) by policy "small-transfers". Failed conditions: args.amount lt 100';

let host: V6Host;
beforeAll(() => {
  host = createV6Host();
});
afterAll(() => host.remove());

describe("ai v6", () => {
  it("ESM: a denied tool does not run and the model reads a tool-error naming the failed condition; held calls resume once", async () => {
    const result = await host.run<{
      adapters: { entryPoints: string[]; frameworkVersion: string }[];
      generate: Case;
      stream: Case;
      agent: Case;
      held: { requested: boolean; ranWhileHeld: string[]; ran: string[]; resumed: ToolOutput[] };
      restored: boolean;
    }>("v6-app.mjs");
    expect(result.adapters[0]).toMatchObject({
      frameworkVersion: "6.0.322",
      entryPoints: [
        "ai#generateText (esm, import hook)",
        "ai#streamText (esm, import hook)",
        "ai#ToolLoopAgent.prototype.prepareCall (esm)",
        "ai#ToolLoopAgent.prototype.prepareCall (cjs)",
      ],
    });
    for (const outcome of [result.generate, result.stream, result.agent]) {
      expect(outcome.ran).toEqual(["transfer 6 to eve"]);
      expect(outcome.step1).toEqual([
        {
          toolCallId: "big",
          toolName: "transfer",
          output: { type: "error-text", value: `${DENIAL} (actual: 600).` },
        },
      ]);
    }
    expect(result.held).toEqual({
      requested: true,
      ranWhileHeld: [],
      ran: ["deploy api"],
      resumed: [{ toolCallId: "dep-1", toolName: "deploy", output: { type: "text", value: "deployed api" } }],
    });
    expect(result.restored).toBe(true);
  });

  it('CommonJS: require("ai") and the CommonJS ToolLoopAgent are governed; shutdown restores', async () => {
    const result = await host.run<{
      entryPoints: string[];
      directRan: string[];
      directStep1: ToolOutput[];
      agentRan: string[];
      agentStep1: ToolOutput[];
      restored: boolean;
    }>("v6-app.cjs");
    expect(result.entryPoints).toEqual([
      "ai#generateText (cjs, require hook)",
      "ai#streamText (cjs, require hook)",
      "ai#generateText (esm, import hook)",
      "ai#streamText (esm, import hook)",
      "ai#ToolLoopAgent.prototype.prepareCall (esm)",
      "ai#ToolLoopAgent.prototype.prepareCall (cjs)",
    ]);
    expect(result.directRan).toEqual([]);
    expect(result.directStep1[0]?.output).toEqual({ type: "error-text", value: `${DENIAL} (actual: 400).` });
    expect(result.agentRan).toEqual([]);
    expect(result.agentStep1[0]?.output.value).toContain("(actual: 400)");
    expect(result.restored).toBe(true);
  });
});
