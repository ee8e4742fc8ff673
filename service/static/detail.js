// The detail dialog: a larger view with its boxes; a video with its shots (click a shot to
// jump there); a document page with its extracted text, tables, key-values and chart data.

import { getJSON, getMedia, request, withQuery } from "./api.js";
import { drawBoxes } from "./boxes.js";
import { fmtRange, h } from "./util.js";

export class Detail {
  constructor({ dialog, title, body, close }) {
    Object.assign(this, { dialog, title, body });
    close.addEventListener("click", () => this.close());
    dialog.addEventListener("close", () => {
      this.body.querySelectorAll("video").forEach((v) => v.pause());
      this.returnFocus?.focus();
    });
    dialog.addEventListener("click", (ev) => { if (ev.target === dialog) this.close(); });
  }

  close() { if (this.dialog.open) this.dialog.close(); }

  async open(r) {
    this.returnFocus = document.activeElement;
    this.title.textContent = r.filename || r.media_id;
    this.body.replaceChildren(h("p.muted", {}, "Loading…"));
    if (!this.dialog.open) this.dialog.showModal();
    let m;
    try {
      m = await getMedia(r.media_id, { fresh: true });
    } catch (e) {
      this.body.replaceChildren(h("p.error", { role: "alert" }, e.message));
      return;
    }
    const view = (m.views || []).find((v) => v.view_id === r.view_id) || (m.views || [])[0];
    if (m.kind === "video") this.body.replaceChildren(...(await this.video(m, r)));
    else if (m.kind === "document") this.body.replaceChildren(...this.document(m, view));
    else this.body.replaceChildren(...this.image(m, view));
  }

  figure(m, view, { boxes = true } = {}) {
    const img = h("img", { src: withQuery(view ? view.thumbnail_url : m.thumbnail_url, { size: 1024 }), alt: view?.caption || m.filename || "" });
    const frame = h("div.thumb.big", {}, img);
    if (view && boxes) {
      const objs = (view.objects || []).map((o) => ({ label: o.label, box: o.box }));
      if (objs.length) drawBoxes(frame, m.media_id, view.view_id, objs, "objects");
    }
    return frame;
  }

  facts(m, view) {
    const rows = [
      ["Kind", m.kind], ["File", m.filename || "—"],
      ["Size", m.width && m.height ? `${m.width}×${m.height}` : null],
      ["Duration", m.duration_s ? `${m.duration_s.toFixed(1)} s` : null],
      ["Added", new Date(m.created_at).toLocaleString()],
    ].filter((x) => x[1]);
    const dl = h("dl.facts", {}, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
    const out = [dl];
    if (view) {
      out.push(h("p.caption", {}, view.caption));
      if (view.tags?.length) out.push(h("ul.tags", { "aria-label": "Tags" }, view.tags.slice(0, 12).map((t) => h("li", {}, `${t.label} ${(t.score * 100).toFixed(0)}%`))));
      if (view.ocr?.length) out.push(h("details", {}, h("summary", {}, `Text found (${view.ocr.length} lines)`), h("pre.ocr", {}, view.ocr.map((o) => o.text).join("\n"))));
    }
    out.push(h("p", {}, h("a", { href: m.file_url, download: m.filename || "" }, "Download the original")));
    return out;
  }

  image(m, view) {
    return [h("div.detail-grid", {}, this.figure(m, view), h("div", {}, this.facts(m, view)))];
  }

  async video(m, r) {
    const video = h("video.detail-video", { controls: true, muted: true, playsInline: true, preload: "metadata", src: m.file_url });
    const seek = (t) => {
      const go = () => { video.currentTime = t; video.play().catch(() => {}); };
      if (video.readyState >= 1) go(); else video.addEventListener("loadedmetadata", go, { once: true });
    };
    if (r.t_start != null) seek(r.t_start);
    const shots = h("ol.shots", { "aria-label": "Shots" });
    try {
      const { frames } = await getJSON(`/v1/media/${encodeURIComponent(m.media_id)}/frames`);
      for (const f of frames) {
        shots.append(h("li", {}, h("button.shot", { type: "button", onclick: () => seek(f.t_start), "aria-label": `Play from ${fmtRange(f.t_start, f.t_end)}: ${f.caption}` },
          h("img", { src: f.thumbnail_url, alt: "" }),
          h("span.moment", {}, fmtRange(f.t_start, f.t_end)),
          h("span.shot-caption", {}, f.caption))));
      }
    } catch (e) {
      shots.append(h("li.muted", {}, `Shots are not available: ${e.message}`));
    }
    return [h("div.detail-grid", {}, video, h("div", {}, this.facts(m, null))), h("h3", {}, "Shots"), shots];
  }

  document(m, view) {
    const pages = (m.views || []).filter((v) => v.kind !== "frame");
    let current = view || pages[0];
    const pageNo = (v) => (v.page ?? v.idx + 1);
    const figHolder = h("div.page-figure");
    const panel = h("div.extract-panel", { role: "tabpanel", id: "extract-panel", tabindex: "0" });
    const kinds = [["text", "Text"], ["tables", "Tables"], ["kv", "Key-values"], ["chart", "Chart data"]];
    let kind = "tables";
    const tabs = h("div.tabs", { role: "tablist", "aria-label": "Extracted content" });
    const showTab = async () => {
      for (const b of tabs.children) b.setAttribute("aria-selected", String(b.dataset.kind === kind));
      panel.replaceChildren(h("p.muted", {}, "Extracting…"));
      const base = `/v1/media/${encodeURIComponent(m.media_id)}/extract?kind=${kind}&view=${current.idx}`;
      try {
        const data = await getJSON(base);
        panel.replaceChildren(...renderExtract(kind, data, base, m, current));
      } catch (e) {
        panel.replaceChildren(h("p.error", { role: "alert" }, e.message));
      }
    };
    for (const [k, label] of kinds) {
      tabs.append(h("button.tab", { type: "button", role: "tab", "aria-controls": "extract-panel", dataset: { kind: k }, onclick: () => { kind = k; showTab(); } }, label));
    }
    const pageSel = h("div.pages", { role: "group", "aria-label": "Pages" }, pages.map((v) => h("button.small.page-btn", {
      type: "button", "aria-pressed": String(v === current),
      onclick: (ev) => {
        current = v;
        for (const b of ev.currentTarget.parentElement.children) b.setAttribute("aria-pressed", "false");
        ev.currentTarget.setAttribute("aria-pressed", "true");
        figHolder.replaceChildren(this.figure(m, current, { boxes: false }));
        showTab();
      },
    }, `Page ${pageNo(v)}`)));
    figHolder.append(this.figure(m, current, { boxes: false }));
    showTab();
    return [pages.length > 1 ? pageSel : null, h("div.detail-grid", {}, figHolder, h("div", {}, tabs, panel)), ...this.facts(m, null)].filter(Boolean);
  }
}

function table(rows, caption) {
  if (!rows || !rows.length) return h("p.muted", {}, "Empty table.");
  const [head, ...rest] = rows;
  return h("div.table-wrap", { tabindex: "0" }, h("table", {},
    caption ? h("caption", {}, caption) : null,
    h("thead", {}, h("tr", {}, head.map((c) => h("th", { scope: "col" }, c ?? "")))),
    h("tbody", {}, rest.map((r) => h("tr", {}, r.map((c) => h("td", {}, c ?? "")))))));
}

// Downloads go through fetch (with the API key header when keys are on), never a bare link
// that would need the key in its URL.
function saveAs(name, blob) {
  const url = URL.createObjectURL(blob);
  const a = h("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function downloads(base, kind, m, view, data) {
  const stem = `${(m.filename || m.media_id).replace(/\.[^.]+$/, "")}-p${view.idx}-${kind}`;
  const json = () => saveAs(`${stem}.json`, new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  const csv = async (ev) => {
    const btn = ev.currentTarget;
    try {
      const text = await request("GET", `${base}&format=csv`);
      saveAs(`${stem}.csv`, new Blob([text], { type: "text/csv" }));
    } catch (e) {
      btn.after(h("span.error", { role: "alert" }, ` ${e.message}`));
    }
  };
  return h("p.downloads", {},
    h("button.button.small", { type: "button", onclick: json }, "Download JSON"),
    kind === "tables" ? h("button.button.small", { type: "button", onclick: csv }, "Download CSV") : null);
}

export function renderExtract(kind, data, base, m, view) {
  const out = [];
  const warn = (data.warnings || []).map((w) => h("p.muted.small", {}, `Note: ${typeof w === "string" ? w : JSON.stringify(w)}`));
  if (kind === "tables") {
    const tables = data.tables || [];
    if (!tables.length) out.push(h("p.muted", {}, "No tables found on this page."));
    tables.forEach((t, i) => out.push(table(t.rows, `Table ${i + 1}`)));
  } else if (kind === "kv") {
    const pairs = data.pairs || [];
    if (!pairs.length) out.push(h("p.muted", {}, "No key-value pairs found on this page."));
    else out.push(h("div.table-wrap", { tabindex: "0" }, h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Key"), h("th", { scope: "col" }, "Value"), h("th", { scope: "col" }, "Type"))),
      h("tbody", {}, pairs.map((p) => h("tr", {}, h("td", {}, p.key), h("td", {}, String(p.value ?? "")), h("td", {}, p.type || "")))))));
  } else if (kind === "chart") {
    if (!data.series || !data.series.length) out.push(h("p.muted", {}, "No chart found on this page."));
    else {
      out.push(h("p", {}, h("strong", {}, data.title || "Chart"), data.type ? ` (${data.type})` : ""));
      const xs = [...new Set(data.series.flatMap((s) => s.points.map((p) => p[0])))];
      const rows = [[data.x_label || "x", ...data.series.map((s) => s.name || data.y_label || "y")],
        ...xs.map((x) => [x, ...data.series.map((s) => { const p = s.points.find((q) => q[0] === x); return p ? p[1] : ""; })])];
      out.push(table(rows, data.y_label ? `y: ${data.y_label}` : null));
    }
  } else {
    out.push(data.text ? h("pre.ocr", {}, data.text) : h("p.muted", {}, "No text found on this page."));
  }
  out.push(...warn, downloads(base, kind, m, view, data));
  return out;
}
