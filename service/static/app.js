// Glimpse page: search (text, example image, both), filters, results with explanations,
// follow-up chat, uploads with per-file progress, and detail views.

import { apiKey, getJSON, request, setApiKey } from "./api.js";
import { Chat } from "./chat.js";
import "./create.js"; // the Create panel wires itself
import { Detail } from "./detail.js";
import { renderCard } from "./results.js";
import { Uploader } from "./upload.js";
import { h } from "./util.js";

const $ = (sel) => document.querySelector(sel);

const els = {
  form: $("#search-form"), q: $("#q"), btn: $("#search-btn"),
  qdrop: $("#query-drop"), qinput: $("#query-image"), qpreview: $("#query-preview"), qclear: $("#query-clear"),
  results: $("#results"), empty: $("#results-empty"), status: $("#search-status"), notice: $("#notice"),
  upPanel: $("#upload-panel"), upDrop: $("#upload-drop"), upInput: $("#upload-input"),
};

const state = { queryImage: null, previewUrl: null, searching: false, lastResults: [] };

const detail = new Detail({ dialog: $("#detail"), title: $("#detail-title"), body: $("#detail-body"), close: $("#detail-close") });
const chat = new Chat({ log: $("#chat-log"), form: $("#chat-form"), input: $("#chat-q"), send: $("#chat-send"), results: els.results });
const uploader = new Uploader({ list: $("#upload-list"), summary: $("#upload-summary") });

// ---- example image (drop, paste, choose) ----

function setQueryImage(file) {
  if (file && !file.type.startsWith("image/")) {
    setStatus(`“${file.name}” is not an image; search by example needs a photo or picture.`, true);
    return;
  }
  state.queryImage = file || null;
  if (state.previewUrl) URL.revokeObjectURL(state.previewUrl);
  state.previewUrl = file ? URL.createObjectURL(file) : null;
  els.qpreview.hidden = !file;
  els.qdrop.classList.toggle("has-image", Boolean(file));
  if (file) {
    els.qpreview.querySelector("img").src = state.previewUrl;
    els.qpreview.querySelector(".query-preview-name").textContent = file.name || "pasted image";
  } else {
    els.qpreview.querySelector("img").removeAttribute("src");
    els.qinput.value = "";
  }
}

els.qinput.addEventListener("change", () => {
  const f = els.qinput.files[0];
  if (f) { setQueryImage(f); search(); }
});
els.qclear.addEventListener("click", () => { setQueryImage(null); els.qinput.focus(); });

function wireDrop(zone, onFiles) {
  let depth = 0;
  zone.addEventListener("dragenter", (ev) => { ev.preventDefault(); depth++; zone.classList.add("over"); });
  zone.addEventListener("dragover", (ev) => { ev.preventDefault(); if (ev.dataTransfer) ev.dataTransfer.dropEffect = "copy"; });
  zone.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) zone.classList.remove("over"); });
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    ev.stopPropagation();
    depth = 0;
    zone.classList.remove("over");
    const files = [...(ev.dataTransfer?.files || [])];
    if (files.length) onFiles(files);
  });
}

wireDrop(els.qdrop, (files) => { setQueryImage(files[0]); if (state.queryImage) search(); });
wireDrop(els.upDrop, (files) => uploader.add(files));
els.upInput.addEventListener("change", () => { uploader.add([...els.upInput.files]); els.upInput.value = ""; });

// A file dropped anywhere else must not make the browser navigate away from the page.
window.addEventListener("dragover", (ev) => ev.preventDefault());
window.addEventListener("drop", (ev) => ev.preventDefault());

document.addEventListener("paste", (ev) => {
  if (ev.target === $("#chat-q")) return;
  const item = [...(ev.clipboardData?.items || [])].find((i) => i.kind === "file" && i.type.startsWith("image/"));
  if (!item) return;
  ev.preventDefault();
  const f = item.getAsFile();
  setQueryImage(new File([f], f.name || "pasted-image.png", { type: f.type }));
  search();
});

// ---- search ----

function filters() {
  const fd = new FormData(els.form);
  const out = {};
  const kinds = fd.getAll("kind");
  if (kinds.length) out.kind = kinds;
  if (fd.get("date_from")) out.date_from = `${fd.get("date_from")}T00:00:00`;
  if (fd.get("date_to")) out.date_to = `${fd.get("date_to")}T23:59:59`;
  return out;
}

function setStatus(text, isError = false) {
  els.status.textContent = text;
  els.status.classList.toggle("error", isError);
}

const K = 12;

async function search() {
  const text = els.q.value.trim();
  if (!text && !state.queryImage) {
    setStatus("Type some words or add an example image first.", true);
    els.q.focus();
    return;
  }
  if (state.searching) return;
  state.searching = true;
  els.btn.disabled = true;
  els.results.setAttribute("aria-busy", "true");
  setStatus("Searching…");
  let body;
  if (state.queryImage) {
    body = new FormData();
    body.append("image", state.queryImage, state.queryImage.name || "query.png");
    if (text) body.append("text", text);
    body.append("k", String(K));
    body.append("explain", "true");
    body.append("explain_m", String(K));
    body.append("filters", JSON.stringify(filters()));
  } else {
    body = { text, k: K, filters: filters(), explain: true, explain_m: K };
  }
  try {
    const t0 = performance.now();
    const res = await request("POST", state.queryImage ? "/v1/search/image" : "/v1/search", body);
    show(res, text, performance.now() - t0);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    state.searching = false;
    els.btn.disabled = false;
    els.results.removeAttribute("aria-busy");
  }
}

function show(res, text, ms) {
  state.lastResults = res.results;
  els.empty.hidden = true;
  const what = [text && `“${text}”`, state.queryImage && "your example image"].filter(Boolean).join(" + ");
  if (res.no_good_match) {
    els.notice.hidden = false;
    let msg = (res.message || "nothing in your library looks like this").replace(/^no good match:\s*/i, "");
    msg = msg.charAt(0).toUpperCase() + msg.slice(1);
    els.notice.replaceChildren(h("strong", {}, "No good match. "), msg.endsWith(".") ? msg : `${msg}.`,
      res.results.length ? h("span.muted", {}, " The closest items are shown below, but they are weak matches.") : null);
  } else {
    els.notice.hidden = true;
    els.notice.replaceChildren();
  }
  els.results.classList.toggle("weak", Boolean(res.no_good_match));
  els.results.replaceChildren(...res.results.map((r, i) => renderCard(r, i, { onOpen: (rr) => detail.open(rr) })));
  const n = res.results.length;
  setStatus(n ? `${n} result${n > 1 ? "s" : ""} for ${what} (${Math.round(ms)} ms)` : `No results for ${what}.`);
  if (!n && !res.no_good_match) {
    els.empty.textContent = "Nothing found. Try other words, or remove a filter.";
    els.empty.hidden = false;
  }
  chat.reset(n ? res.session_id : null, n
    ? `Ask about these ${n} results, e.g. “how many faces are in the first one?”`
    : "Search again to ask about results.");
}

els.form.addEventListener("submit", (ev) => { ev.preventDefault(); search(); });

// ---- API key (servers with keys on): asked for on a 401, kept for this tab ----

const keyForm = $("#key-form");

function showKeyForm(message) {
  keyForm.hidden = false;
  $("#key-forget").hidden = !apiKey();
  $("#key-hint").textContent = message || "";
}

window.addEventListener("glimpse:key-needed", (ev) => {
  showKeyForm(ev.detail?.hadKey ? "This key was refused; enter another." : "This server needs an API key.");
});
keyForm.addEventListener("submit", (ev) => {
  ev.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return;
  setApiKey(key);
  $("#api-key").value = "";
  showKeyForm("Key saved for this tab.");
  boot();
});
$("#key-forget").addEventListener("click", () => {
  setApiKey("");
  showKeyForm("Key forgotten.");
});

// ---- header status; open the upload panel when the library is empty ----

async function boot() {
  try {
    const hlt = await getJSON("/health");
    $("#health").textContent = hlt.status === "ok" ? `Ready · ${hlt.model} model` : `Degraded: catalog ${hlt.catalog}`;
    $("#health").classList.toggle("bad", hlt.status !== "ok");
  } catch (e) {
    $("#health").textContent = e.message;
    $("#health").classList.add("bad");
  }
  try {
    const media = await getJSON("/v1/media?limit=1");
    if (!media.length) els.upPanel.open = true;
  } catch { /* the search will show the error */ }
}

boot();
