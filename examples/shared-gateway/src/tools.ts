/** The release bot's tools: plain LangChain tools that know nothing about governance. */
import { tool } from "@langchain/core/tools";
import { z } from "zod";

/** Every tool run, in order, so the example (and its test) can show what really ran. */
export const ran: string[] = [];

export const readChanges = tool(
  async () => {
    ran.push("read_changes");
    return JSON.stringify([{ area: "api", lines: 45 }]);
  },
  { name: "read_changes", description: "List the changes waiting to be released", schema: z.object({}) },
);

export const openPr = tool(
  async ({ title }) => {
    ran.push(`open_pr ${title}`);
    return JSON.stringify({ pr: 101, title });
  },
  {
    name: "open_pr",
    description: "Open a pull request",
    schema: z.object({ title: z.string(), lines_changed: z.number() }),
  },
);

export const mergeRelease = tool(
  async ({ version }) => {
    ran.push(`merge_release ${version}`);
    return `released ${version}`;
  },
  { name: "merge_release", description: "Ship a release", schema: z.object({ version: z.string() }) },
);
