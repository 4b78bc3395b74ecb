/** The weather assistant's tools. Plain AI SDK tools: nothing here knows about governance. */
import { tool } from "ai";
import { z } from "zod";
import { green, say } from "./ui.js";

export const tools = {
  get_forecast: tool({
    description: "Tonight's forecast for a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => {
      say(green("✔ ran"), `get_forecast → ${city}: storm tonight, 3 °C, gusts up to 95 km/h`);
      return { city, tonight: "storm", celsius: 3, gustsKmh: 95 };
    },
  }),
  set_thermostat: tool({
    description: "Set the home thermostat",
    inputSchema: z.object({ celsius: z.number(), home_pin: z.string() }),
    execute: async ({ celsius }) => {
      say(green("✔ ran"), `set_thermostat → heating to ${celsius} °C`);
      return `thermostat set to ${celsius} °C`;
    },
  }),
  broadcast_alert: tool({
    description: "Send an alert to everyone in the neighbourhood group",
    inputSchema: z.object({ area: z.string(), message: z.string() }),
    execute: async ({ area, message }) => {
      say(green("✔ ran"), `broadcast_alert → sent to ${area}: "${message}"`);
      return `alert sent to 312 households in ${area}`;
    },
  }),
};
