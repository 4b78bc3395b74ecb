import { defineConfig } from "vitest/config";

// Tests run real stores, real processes and real HTTP; on a loaded 2-core machine some take longer
// than vitest's 5 s default. The limit guards against hangs only: speed is measured by `pnpm bench`.
export default defineConfig({ test: { testTimeout: 30_000 } });
