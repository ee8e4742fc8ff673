// Follow-up questions about the current results: POST /v1/sessions/{id}/messages.
// Referred results are highlighted and the answer's boxes drawn on them.

import { postJSON } from "./api.js";
import { drawBoxes, clearBoxes } from "./boxes.js";
import { renderSteps } from "./results.js";
import { h } from "./util.js";

export class Chat {
  constructor({ log, form, input, send, results }) {
    Object.assign(this, { log, form, input, send, results });
    this.sessionId = null;
    this.busy = false;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.ask(); });
  }

  /** A new search opens a new session: the conversation starts over. */
  reset(sessionId, summary) {
    this.sessionId = sessionId;
    this.log.replaceChildren(h("p.muted.chat-hint", {}, summary));
    this.setEnabled(Boolean(sessionId));
  }

  setEnabled(on) {
    this.input.disabled = !on;
    this.send.disabled = !on || this.busy;
  }

  cards() { return [...this.results.querySelectorAll(".card")]; }

  clearHighlights() {
    for (const c of this.cards()) {
      c.classList.remove("referred");
      clearBoxes(c.querySelector(".thumb"), "answer");
    }
  }

  async ask() {
    const q = this.input.value.trim();
    if (!q || !this.sessionId || this.busy) return;
    this.busy = true;
    this.setEnabled(true);
    this.log.append(h("div.msg.user", {}, h("p", {}, q)));
    const pending = h("div.msg.assistant.pending", { "aria-busy": "true" }, h("p", {}, "Thinking…"));
    this.log.append(pending);
    this.scroll();
    this.input.value = "";
    try {
      const a = await postJSON(`/v1/sessions/${encodeURIComponent(this.sessionId)}/messages`,
        { question: q });
      pending.replaceWith(this.renderAnswer(a));
      await this.highlight(a);
    } catch (e) {
      pending.replaceWith(h("div.msg.assistant.error", { role: "alert" }, h("p", {}, e.message)));
    } finally {
      this.busy = false;
      this.setEnabled(Boolean(this.sessionId));
      this.scroll();
      this.input.focus();
    }
  }

  renderAnswer(a) {
    const idx = a.result_indices || [];
    const refs = idx.length
      ? h("p.refs", {}, "About: ", idx.map((i) => h("a.ref", {
        href: `#result-${i + 1}`,
        onclick: (ev) => {
          ev.preventDefault();
          const card = document.getElementById(`result-${i + 1}`);
          if (card) { card.scrollIntoView({ block: "nearest", behavior: "smooth" }); card.focus({ preventScroll: true }); }
        },
      }, `result ${i + 1}`)))
      : null;
    const steps = a.steps && a.steps.length
      ? h("details.why", {}, h("summary", {}, `How I got this (${a.steps.length} step${a.steps.length > 1 ? "s" : ""})`),
        renderSteps(a.steps))
      : null;
    const boxes = (a.boxes || []).length
      ? h("p.muted.small", {}, `${a.boxes.length} box${a.boxes.length > 1 ? "es" : ""} drawn on the results`)
      : null;
    return h("div.msg.assistant", {}, h("p.answer", {}, a.answer), refs, boxes, steps);
  }

  async highlight(a) {
    this.clearHighlights();
    const cards = this.cards();
    for (const i of a.result_indices || []) cards[i]?.classList.add("referred");
    const byView = new Map();
    for (const b of a.boxes || []) {
      if (!byView.has(b.view_id)) byView.set(b.view_id, []);
      byView.get(b.view_id).push(b);
    }
    const draws = [];
    for (const [viewId, boxes] of byView) {
      for (const c of cards.filter((x) => x.dataset.viewId === viewId)) {
        c.classList.add("referred");
        draws.push(drawBoxes(c.querySelector(".thumb"), c.dataset.mediaId, viewId, boxes, "answer"));
      }
    }
    await Promise.all(draws);
  }

  scroll() { this.log.scrollTop = this.log.scrollHeight; }
}
