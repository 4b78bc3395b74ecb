/**
 * The agent process: an unchanged LangChain agent (scripted model, no API key), governed through
 * the shared gateway named by AA_GATEWAY_URL / AA_API_KEY. It reads, tries a PR that is too big
 * (denied: the model reads why), opens a small one, and asks to ship, which waits until an operator
 * approves it from another process. Prints one JSON line with what ran and what the model read.
 */

import { askTools, ScriptedChatModel } from "@aa/adapter-langchain/testing";
import { initAssembly } from "@aa/core";
import { createAgent } from "langchain";
import { mergeRelease, openPr, ran, readChanges } from "./tools.js";

const assembly = await initAssembly({ mode: "sdk-only" });
const model = new ScriptedChatModel([
  askTools({ name: "read_changes", args: {}, id: "c1" }),
  askTools({ name: "open_pr", args: { title: "everything", lines_changed: 120 }, id: "c2" }),
  askTools({ name: "open_pr", args: { title: "api", lines_changed: 45 }, id: "c3" }),
  askTools({ name: "merge_release", args: { version: "v2.4.0" }, id: "c4" }),
]);
const agent = createAgent({ model, tools: [readChanges, openPr, mergeRelease] });
process.stderr.write(`governed by ${(await assembly.whoami()).gate} gate as ${assembly.agent.id}\n`);
await agent.invoke({ messages: [{ role: "user", content: "Ship v2.4.0" }] });
const who = await assembly.whoami();
process.stdout.write(
  `${JSON.stringify({
    agent: who.agentId,
    gate: who.gate,
    ran,
    deniedMessage: model.toolMessagesAt(2).at(-1),
    mergeMessage: model.toolMessagesAt(4).at(-1),
  })}\n`,
);
await assembly.shutdown();
