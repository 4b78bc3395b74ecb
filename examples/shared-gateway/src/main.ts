/** `pnpm start`: the shared-gateway story, told step by step. */
import { runSharedGatewayDemo } from "./run.js";

const result = await runSharedGatewayDemo((line) => console.log(`• ${line}`));
console.log(
  `• the agent ran as ${result.agent.agent} through the ${result.agent.gate} gate: ${result.agent.ran.join(", ")}`,
);
console.log(`• the model read: ${result.agent.deniedMessage?.content}`);
console.log(`• ${result.verifyOutput.trim()}`);
