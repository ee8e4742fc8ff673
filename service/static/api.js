// Thin fetch helpers. Every API error has the shape {"error": {"code", "message"}}.

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

export function errorMessage(body, status) {
  if (body && body.error && body.error.message) return body.error.message;
  if (status === 0) return "Could not reach the Glimpse server. Is it running?";
  return `The server answered with status ${status}.`;
}

// An API key, when the server has keys on: typed once into the page, kept for this tab only
// (sessionStorage), sent as a header. Links (<img>, <video>, downloads) carry no key: the
// server hands out short-lived signed URLs for them.
const KEY_SLOT = "glimpse.apiKey";

export function apiKey() {
  try { return sessionStorage.getItem(KEY_SLOT) || ""; } catch { return ""; }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_SLOT, key);
    else sessionStorage.removeItem(KEY_SLOT);
  } catch { /* storage disabled: the key lasts until reload */ }
}

export function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** url with extra query parameters, whether or not it already has some (signed URLs do). */
export function withQuery(url, params) {
  const q = new URLSearchParams(params).toString();
  if (!q) return url;
  const hash = url.indexOf("#");
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const frag = hash >= 0 ? url.slice(hash) : "";
  return `${base}${base.includes("?") ? "&" : "?"}${q}${frag}`;
}

async function parse(resp) {
  const type = resp.headers.get("content-type") || "";
  if (type.includes("application/json")) {
    try { return await resp.json(); } catch { return null; }
  }
  return await resp.text();
}

export async function request(method, url, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let resp;
  try {
    resp = await fetch(url, init);
  } catch {
    throw new ApiError(errorMessage(null, 0), 0, "network");
  }
  const data = await parse(resp);
  if (!resp.ok) {
    const code = data && data.error ? data.error.code : "http_" + resp.status;
    if (resp.status === 401) window.dispatchEvent(new CustomEvent("glimpse:key-needed", { detail: { hadKey: Boolean(apiKey()) } }));
    throw new ApiError(errorMessage(data, resp.status), resp.status, code);
  }
  return data;
}

export const getJSON = (url) => request("GET", url);
export const postJSON = (url, body) => request("POST", url, body);

const mediaCache = new Map();

/** GET /v1/media/{id}, cached (views carry width/height for drawing boxes). */
export function getMedia(mediaId, { fresh = false } = {}) {
  if (fresh || !mediaCache.has(mediaId)) {
    const p = getJSON(`/v1/media/${encodeURIComponent(mediaId)}`);
    mediaCache.set(mediaId, p);
    p.catch(() => mediaCache.delete(mediaId));
  }
  return mediaCache.get(mediaId);
}

/** Width and height of one view, in the pixels boxes are given in. */
export async function viewSize(mediaId, viewId) {
  const m = await getMedia(mediaId);
  const v = (m.views || []).find((x) => x.view_id === viewId);
  const w = (v && v.width) || m.width;
  const h = (v && v.height) || m.height;
  return w && h ? { width: w, height: h } : null;
}
