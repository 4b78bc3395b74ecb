import { pgSchemaUrl } from "./pg.js";
import { storeContract } from "./store-contract.js";

// The whole store contract again, with every replica releasing the chain-head lock early.
const url = pgSchemaUrl();
storeContract("postgres, early_lock_release=on", () => `${url()}&early_lock_release=on`);
