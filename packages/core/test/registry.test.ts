import { describe, expect, it } from "vitest";
import { AdapterRegistry, BUILT_IN_RANKS, rankOf } from "../src/registry.js";
import type { FrameworkAdapter } from "../src/types.js";

const adapter = (name: string, priority?: number): FrameworkAdapter => ({
  name,
  supportedVersions: "*",
  ...(priority === undefined ? {} : { priority }),
  isAvailable: () => true,
  registerHooks: () => ({ entryPoints: [] }),
  unregisterHooks: () => {},
});

describe("AdapterRegistry", () => {
  it("orders built-ins by their fixed ranks, third-party at 50, mcp last, whatever the discovery order", () => {
    const registry = new AdapterRegistry();
    for (const name of [
      "mcp",
      "acme",
      "openai-agents",
      "langgraph",
      "google-adk",
      "vercel-ai",
      "langchain",
    ]) {
      registry.register(adapter(name));
    }
    expect(registry.ordered().map((a) => [a.name, rankOf(a)])).toEqual([
      ["langchain", 0],
      ["langgraph", 1],
      ["vercel-ai", 2],
      ["openai-agents", 4],
      ["google-adk", 5],
      ["acme", 50],
      ["mcp", 99],
    ]);
  });

  it("lets a third-party adapter choose its priority but never override a built-in rank", () => {
    expect(rankOf(adapter("acme", 10))).toBe(10);
    expect(rankOf(adapter("langchain", 70))).toBe(BUILT_IN_RANKS.langchain);
  });

  it("keeps the first adapter registered under a name", () => {
    const registry = new AdapterRegistry();
    const first = adapter("acme");
    expect(registry.register(first)).toBe(true);
    expect(registry.register(adapter("acme"))).toBe(false);
    expect(registry.get("acme")).toBe(first);
    expect(registry.size).toBe(1);
  });
});
