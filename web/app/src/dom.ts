/** DOM helpers shared by the page's modules (main.ts, inbox.ts). */
import { ApiError, ServerError } from "../../client/src/index.js";

/** The element with id `id` (the page's markup has it: a missing one is a bug). */
export function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (el === null) throw new Error(`#${id} missing`);
  return el as T;
}
/** A new element with attributes and text. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, text?: string): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
/** An SDK error as `code: message`. */
export function why(e: unknown): string {
  return e instanceof ApiError || e instanceof ServerError ? `${e.code}: ${e.message}` : (e as Error).message;
}
