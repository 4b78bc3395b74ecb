/** Terminal narration for the demo: one line per event, coloured when stdout is a terminal. */
const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint = (code: number) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);

export const green = paint(32);
export const red = paint(31);
export const yellow = paint(33);
export const cyan = paint(36);
export const dim = paint(2);
export const bold = paint(1);

export function say(who: string, text: string): void {
  console.log(`${who.padEnd(10)} ${text}`);
}

export function heading(text: string): void {
  console.log(`\n${bold(text)}`);
}

export function short(value: unknown, max = 90): string {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
