import type { CappedCount } from "../store/index.ts";
import { type Html, html } from "./html.ts";

const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

/** 1234 → "1,234". */
export function count(n: number): string {
  return integer.format(n);
}

/** A capped count: "1,234", or "10,000+" when it stopped at its cap. */
export function capped(c: CappedCount): string {
  return c.capped ? `${count(c.count)}+` : count(c.count);
}

/** A duration in words a person reads at a glance: "850 ms", "12.3 s", "4 min", "3 h 5 min", "2 d 4 h". */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return "-";
  const abs = Math.abs(ms);
  if (abs < 1000) return `${Math.round(ms)} ms`;
  if (abs < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(abs / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/** A UTC time with its distance from `now`: `<time>` with a machine-readable value. */
export function when(date: Date | null | undefined, now = Date.now()): Html {
  if (date === null || date === undefined) return html`<span class="muted">-</span>`;
  const iso = date.toISOString();
  const text = `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`;
  const delta = now - date.getTime();
  const relative = Math.abs(delta) < 1000 ? "now" : delta > 0 ? `${duration(delta)} ago` : `in ${duration(-delta)}`;
  return html`<time datetime="${iso}" title="${text}">${relative}</time>`;
}

/** A status as a coloured badge (colours in the stylesheet, by status name). */
export function badge(status: string): Html {
  return html`<span class="badge s-${status.toLowerCase()}">${status}</span>`;
}

/** A JSON value pretty-printed in a `<pre>`, after the caller's redaction. */
export function json(value: unknown): Html {
  let text: string;
  try {
    text = JSON.stringify(value, null, 2) ?? "null";
  } catch {
    text = "(not representable as JSON)";
  }
  return html`<pre class="json">${text}</pre>`;
}

/** The short form of an id for tables (its random tail: UUIDv7 ids made together share their head). */
export function shortId(id: string): Html {
  return html`<code title="${id}">…${id.slice(-12)}</code>`;
}
