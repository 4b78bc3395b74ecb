import { join } from "node:path";
import { tempDir } from "./helpers.js";
import { storeContract } from "./store-contract.js";

const dir = tempDir();
let n = 0;
storeContract("sqlite", () => join(dir, `store-${n++}.db`));
