/**
 * @aa/console: the operator web console of Agent Assembly (pending approvals, live audit timeline
 * with chain status, agents and delegations, posture). It is static files only: the gateway serves
 * them at `/console/` and the page talks to the gateway's `/v1` API with the operator's key.
 *
 * @example
 * // with createGateway of @aa/gateway (this package depends on nothing; `aa gateway start` wires it):
 * const gateway = await createGateway({ policy, console: { assetsDir: consoleAssetsDir } });
 */
import { fileURLToPath } from "node:url";

/** Absolute path of the folder holding the console's `index.html`, scripts and styles. */
export const consoleAssetsDir: string = fileURLToPath(new URL("../assets/", import.meta.url));
