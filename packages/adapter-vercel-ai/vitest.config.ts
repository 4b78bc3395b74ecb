import { defineConfig } from "vitest/config";

// Each test starts a child Node process (the import hook must be registered before `ai` loads);
// on a busy machine that can take longer than vitest's 5 s default.
export default defineConfig({ test: { testTimeout: 60_000 } });
