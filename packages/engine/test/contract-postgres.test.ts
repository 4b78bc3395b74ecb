import { pgSchemaUrl } from "./pg.js";
import { storeContract } from "./store-contract.js";

storeContract("postgres", pgSchemaUrl());
