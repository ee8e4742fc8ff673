// Boxes drawn over an image. The <svg> overlay uses the same "contain" fit as the <img>
// (viewBox in view pixels + preserveAspectRatio meet), so boxes land on the right pixels
// whatever the size of the card.

import { viewSize } from "./api.js";

const NS = "http://www.w3.org/2000/svg";

export function overlay(frame) {
  let svg = frame.querySelector("svg.boxes");
  if (!svg) {
    svg = document.createElementNS(NS, "svg");
    svg.setAttribute("class", "boxes");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("preserveAspectRatio", "xMidYMid meet");
    frame.append(svg);
  }
  return svg;
}

/** Draw `boxes` ([{label, box:[x0,y0,x1,y1]}]) in group `group` (replacing that group). */
export async function drawBoxes(frame, mediaId, viewId, boxes, group) {
  clearBoxes(frame, group);
  if (!boxes.length) return 0;
  const size = await viewSize(mediaId, viewId).catch(() => null);
  if (!size) return 0;
  const svg = overlay(frame);
  svg.setAttribute("viewBox", `0 0 ${size.width} ${size.height}`);
  const g = document.createElementNS(NS, "g");
  g.setAttribute("class", `box-group box-${group}`);
  g.dataset.group = group;
  const stroke = Math.max(2, Math.round(Math.max(size.width, size.height) / 160));
  for (const b of boxes) {
    const [x0, y0, x1, y1] = b.box;
    const r = document.createElementNS(NS, "rect");
    r.setAttribute("x", x0);
    r.setAttribute("y", y0);
    r.setAttribute("width", Math.max(1, x1 - x0));
    r.setAttribute("height", Math.max(1, y1 - y0));
    r.setAttribute("stroke-width", stroke);
    g.append(r);
    if (b.label) {
      const t = document.createElementNS(NS, "text");
      t.setAttribute("x", x0 + stroke);
      t.setAttribute("y", Math.max(stroke * 6, y0 - stroke));
      t.setAttribute("font-size", stroke * 6);
      t.textContent = b.label;
      g.append(t);
    }
  }
  svg.append(g);
  return boxes.length;
}

export function clearBoxes(frame, group) {
  const svg = frame.querySelector("svg.boxes");
  if (!svg) return;
  for (const g of svg.querySelectorAll(`g[data-group="${group}"]`)) g.remove();
}
