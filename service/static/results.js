// The result grid: thumbnail (with boxes), relevance, caption, a "why" expander with the
// numbered explanation steps and their evidence, and video moments that play from t_start.

import { drawBoxes, clearBoxes } from "./boxes.js";
import { fmtRange, fmtTime, h, pct } from "./util.js";

const KIND_LABEL = { image: "Photo", video: "Video", document: "Document" };

export function relevanceOf(r) {
  if (typeof r.relevance === "number") return r.relevance;
  if (typeof r.similarity === "number") return Math.max(0, r.similarity);
  return null;
}

function evidenceText(e) {
  const bits = [];
  if (e.type) bits.push(e.type);
  if (e.label !== undefined) bits.push(`“${e.label}”`);
  else if (e.text !== undefined) bits.push(`“${e.text}”`);
  if (typeof e.score === "number") bits.push(e.score.toFixed(2));
  if (e.box) bits.push("▭");
  const skip = new Set(["type", "label", "text", "score", "box", "view_id", "source"]);
  for (const [k, v] of Object.entries(e)) {
    if (skip.has(k) || v === null || typeof v === "object") continue;
    bits.push(`${k.replace(/_/g, " ")}: ${typeof v === "number" ? +v.toFixed(3) : v}`);
  }
  return bits.join(" · ");
}

export function renderSteps(steps) {
  return h("ol.steps", {},
    steps.map((s) => h("li.step", { value: s.n },
      h("p.step-text", {}, s.text),
      s.evidence && s.evidence.length
        ? h("ul.evidence", { "aria-label": "Evidence" },
          s.evidence.map((e) => h("li.ev", { title: JSON.stringify(e) }, evidenceText(e))))
        : null)));
}

export function boxesFromEvidence(steps, viewId) {
  const out = [];
  const seen = new Set();  // two steps citing the same box draw it once
  for (const s of steps || []) {
    for (const e of s.evidence || []) {
      if (Array.isArray(e.box) && e.box.length === 4 && (!e.view_id || e.view_id === viewId)) {
        const label = e.label || e.text || e.type || "";
        const key = `${label}|${e.box.join(",")}`;
        if (seen.has(key)) continue;
        seen.add(key);
        out.push({ label, box: e.box });
      }
    }
  }
  return out;
}

/** Replace the thumbnail of a video card by the video, playing from the moment's start. */
export function playMoment(card, r, start) {
  const frame = card.querySelector(".thumb");
  const t0 = start ?? r.t_start ?? 0;
  let video = frame.querySelector("video");
  if (!video) {
    video = h("video", {
      controls: true, muted: true, playsInline: true, preload: "auto",
      "aria-label": `Video ${r.filename || r.media_id} from ${fmtTime(t0)}`,
    });
    video.dataset.tStart = String(t0);
    video.src = `${r.file_url}#t=${t0}`;
    frame.querySelector("img")?.setAttribute("hidden", "");
    frame.querySelector(".play-overlay")?.setAttribute("hidden", "");
    frame.classList.add("playing");
    frame.prepend(video);
  }
  video.dataset.tStart = String(t0);
  const go = () => {
    if (Math.abs(video.currentTime - t0) > 0.05) video.currentTime = t0;
    video.play().catch(() => { /* autoplay refused: the controls are there */ });
  };
  if (video.readyState >= 1) go();
  else video.addEventListener("loadedmetadata", go, { once: true });
  return video;
}

// set through the CSSOM: the page's CSP (style-src 'self') refuses inline style attributes
function widthFill(width) {
  const fill = h("span.fill");
  fill.style.width = width;
  return fill;
}

export function renderCard(r, i, { onOpen }) {
  const rel = relevanceOf(r);
  const isVideo = r.kind === "video" && r.t_start !== null && r.t_start !== undefined;
  const name = r.filename || r.media_id;
  const label = isVideo
    ? `Play ${name} from ${fmtTime(r.t_start)}`
    : `Open ${name}`;
  const img = h("img", {
    src: r.thumbnail_url, alt: r.caption || name, decoding: "async",
  });
  const thumbBtn = h("button.thumb-btn", {
    type: "button", "aria-label": label,
    onclick: () => (isVideo ? playMoment(card, r) : onOpen(r, i)),
  }, isVideo ? h("span.play-overlay", { "aria-hidden": "true" }, "▶") : null);
  const frame = h("div.thumb", {}, img, thumbBtn,
    h("span.rank", { "aria-hidden": "true" }, String(i + 1)),
    isVideo ? h("span.moment", {}, fmtRange(r.t_start, r.t_end)) : null);

  const kind = KIND_LABEL[r.kind] || r.kind;
  const where = isVideo ? ` · ${fmtRange(r.t_start, r.t_end)}`
    : r.page ? ` · page ${r.page}` : "";
  const why = r.explanation && r.explanation.length
    ? h("details.why", {},
      h("summary", {}, "Why this result?"),
      renderSteps(r.explanation))
    : null;
  const card = h("li.card", {
    id: `result-${i + 1}`, dataset: { index: String(i), viewId: r.view_id, mediaId: r.media_id },
    "aria-label": `Result ${i + 1}: ${r.caption || name}`,
  },
  frame,
  h("div.card-body", {},
    h("p.caption", {}, r.caption || "(no caption)"),
    h("p.meta", {}, h("span.kind-tag", {}, kind), h("span.filename", { title: name }, name + where)),
    rel !== null
      ? h("div.score", { title: `score ${r.score}${r.similarity != null ? `, similarity ${r.similarity}` : ""}` },
        h("span.bar", { "aria-hidden": "true" }, widthFill(pct(rel))),
        h("span.score-text", {}, `${pct(rel)} relevant`))
      : h("div.score", {}, h("span.score-text", {}, `score ${(+r.score).toFixed(3)}`)),
    r.tags && r.tags.length
      ? h("ul.tags", { "aria-label": "Tags" }, r.tags.slice(0, 5).map((t) => h("li", {}, t.label)))
      : null,
    h("div.card-actions", {},
      isVideo ? h("button.small", { type: "button", onclick: () => playMoment(card, r) },
        `▶ Play ${fmtRange(r.t_start, r.t_end)}`) : null,
      h("button.small.ghost", { type: "button", onclick: () => onOpen(r, i) }, "Details")),
    why));

  if (why) {
    const boxes = boxesFromEvidence(r.explanation, r.view_id);
    why.addEventListener("toggle", () => {
      if (why.open && boxes.length) drawBoxes(frame, r.media_id, r.view_id, boxes, "why");
      else clearBoxes(frame, "why");
    });
  }
  return card;
}
