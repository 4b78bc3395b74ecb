/** Starts the support app: `npm start`, then try the curl lines in the README. */
import { initAssembly } from "@aa/core";
import { createApp } from "./app.js";

const assembly = await initAssembly({ agent: { id: "support-agent" } }); // aa.policy.yaml, .aa/assembly.db
const port = Number(process.env.PORT ?? 3000);
const server = createApp(assembly).listen(port, "127.0.0.1", () => {
  console.log(`support app on http://127.0.0.1:${port} (tokens: session-ada, session-bo)`);
});
const stop = () => server.close(() => void assembly.shutdown());
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
