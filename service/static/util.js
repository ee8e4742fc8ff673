// Small DOM and formatting helpers.

/** h("div.card#x", {attrs}, ...children) — a tiny element builder. Text children are escaped. */
export function h(spec, attrs = {}, ...children) {
  const m = /^([a-z0-9]+)?((?:[.#][\w-]+)*)$/i.exec(spec);
  const el = document.createElement((m && m[1]) || "div");
  for (const part of ((m && m[2]) || "").match(/[.#][\w-]+/g) || []) {
    if (part[0] === ".") el.classList.add(part.slice(1));
    else el.id = part.slice(1);
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function fmtTime(t) {
  if (t === null || t === undefined || Number.isNaN(t)) return "";
  const m = Math.floor(t / 60);
  const s = t - m * 60;
  const whole = Math.abs(s - Math.round(s)) < 0.05;
  const ss = whole ? String(Math.round(s)).padStart(2, "0") : s.toFixed(1).padStart(4, "0");
  return `${m}:${ss}`;
}

export function fmtRange(a, b) {
  if (a === null || a === undefined) return "";
  return b === null || b === undefined ? fmtTime(a) : `${fmtTime(a)}–${fmtTime(b)}`;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(0)} KB`;
  return `${(n / 1024 / 1024).toFixed(1)} MB`;
}

export function pct(x) {
  return `${Math.round(Math.max(0, Math.min(1, x)) * 100)}%`;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
