import { EngineError } from "../errors.js";
import type { AuditStore } from "./types.js";

export const PostgresStore = {
  async open(_url: string): Promise<AuditStore> {
    throw new EngineError(
      "STORE_UNAVAILABLE",
      503,
      "The PostgreSQL store is not available in this build yet",
    );
  },
};
