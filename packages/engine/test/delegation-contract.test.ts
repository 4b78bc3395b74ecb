import { join } from "node:path";
import { delegationContract } from "./delegation-contract.js";
import { tempDir } from "./helpers.js";
import { pgSchemaUrl } from "./pg.js";

delegationContract("memory", () => ":memory:");
const dir = tempDir("aa-delegation-");
const sqliteFile = join(dir, "shared.db");
// Every test uses its own org in one shared file, as processes sharing an agent host would.
delegationContract("sqlite", () => sqliteFile);
delegationContract("postgres", pgSchemaUrl());
