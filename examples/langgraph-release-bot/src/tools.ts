/** The release bot's tools. Plain LangChain tools: nothing here knows about governance. */
import { tool } from "@langchain/core/tools";
import { z } from "zod";
import { green, say, short } from "./ui.js";

/** The change set waiting to be released: 120 lines in three areas. */
export const PENDING_CHANGES = [
  { area: "api", files: ["src/api/routes.ts", "src/api/auth.ts"], lines: 45 },
  { area: "billing", files: ["src/billing/invoice.ts"], lines: 40 },
  { area: "docs", files: ["docs/release-notes.md"], lines: 35 },
];

let nextPr = 101;

export const readChanges = tool(
  async () => {
    say(green("✔ ran"), "read_changes");
    return JSON.stringify(PENDING_CHANGES);
  },
  { name: "read_changes", description: "List the changes waiting to be released", schema: z.object({}) },
);

export const openPr = tool(
  async ({ title, lines_changed }) => {
    const pr = nextPr++;
    say(green("✔ ran"), `open_pr → PR #${pr} "${title}" (${lines_changed} lines)`);
    return JSON.stringify({ pr, title });
  },
  {
    name: "open_pr",
    description: "Open a pull request",
    schema: z.object({ title: z.string(), files: z.array(z.string()), lines_changed: z.number() }),
  },
);

export const mergeRelease = tool(
  async ({ prs, version }) => {
    say(green("✔ ran"), `merge_release → ${version} shipped with PRs ${short(prs)}`);
    return `released ${version}`;
  },
  {
    name: "merge_release",
    description: "Merge the pull requests and ship the release",
    schema: z.object({ prs: z.array(z.number()), version: z.string(), token: z.string() }),
  },
);
