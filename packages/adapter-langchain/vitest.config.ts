import { defineConfig } from "vitest/config";

// Tests run the real LangChain (ESM and CJS builds) and real stores; on a loaded 2-core machine some take longer
// than vitest's 5 s default. The limit guards against hangs only: speed is measured by `pnpm bench`.
export default defineConfig({ test: { testTimeout: 30_000 } });
