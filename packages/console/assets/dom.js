// @ts-check
/**
 * Building the page without HTML strings: every piece of data becomes a text node or an attribute
 * value, never markup, so an agent id or a tool argument like `<img src=x onerror=...>` shows as
 * text. (The Content-Security-Policy also requires Trusted Types, so an innerHTML slipping in here
 * later would throw instead of rendering.)
 */

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {Record<string, string | number | boolean | undefined | null | ((event: Event) => void)>} Attributes
 */

/**
 * Creates `<tag>` with attributes (`on*` keys add listeners; `false`/`null`/`undefined` skip;
 * `true` sets an empty attribute) and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (typeof value === "function") {
      element.addEventListener(name.replace(/^on/, ""), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

/**
 * @param {Element} parent
 * @param {(Child | Child[])[]} children
 */
function append(parent, children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === "object" ? child : document.createTextNode(String(child)));
  }
}

/**
 * The element with this id (the page's fixed skeleton); throws when index.html lacks it.
 * @template {HTMLElement} T
 * @param {string} id
 * @param {new () => T} type
 * @returns {T}
 */
export function byId(id, type) {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`the console page has no #${id} (${type.name})`);
  return element;
}

/**
 * A short local time for a timestamp (the full ISO time is in the element's title).
 * @param {string | undefined | null} iso
 */
export function time(iso) {
  if (!iso) return h("span", {}, "—");
  const date = new Date(iso);
  const text = Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
  return h("time", { datetime: iso, title: iso }, text);
}

/**
 * Compact JSON of a value for display (as text), cut at `max` characters.
 * @param {unknown} value
 * @param {number} [max]
 */
export function preview(value, max = 300) {
  if (value === undefined || value === null) return "";
  let text;
  try {
    text = typeof value === "string" ? value : JSON.stringify(value);
  } catch {
    text = String(value);
  }
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
