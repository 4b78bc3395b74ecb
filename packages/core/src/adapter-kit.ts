/**
 * `@aa/core/adapter-kit`: helpers for adapter packages (built-in or third-party), kept out of the
 * main entry point so an app's `@aa/core` API does not grow with adapter plumbing.
 */
export { BoundedMemo } from "./bounded-memo.js";
