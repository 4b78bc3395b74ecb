import { defineConfig } from "vitest/config";

// Every test runs the real `aa` binary (a Node process each), often several per test: on a
// loaded 2-core machine that takes longer than vitest's 5 s default.
export default defineConfig({ test: { testTimeout: 60_000 } });
