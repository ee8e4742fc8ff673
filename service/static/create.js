// The "Create" panel: a prompt becomes an image made from what the library has indexed
// (POST /v1/generations), shown with each check (satisfied or not, with why) and the source
// images it was made from, linked.

import { getJSON, postJSON } from "./api.js";
import { h } from "./util.js";

const $ = (sel) => document.querySelector(sel);

export class Creator {
  constructor({ form, prompt, seed, size, button, status, result }) {
    Object.assign(this, { form, prompt, seed, size, button, status, result });
    this.busy = false;
    form.addEventListener("submit", (ev) => { ev.preventDefault(); this.create(); });
  }

  say(text, isError = false) {
    this.status.textContent = text;
    this.status.classList.toggle("error", isError);
  }

  async create() {
    const prompt = this.prompt.value.trim();
    if (!prompt) { this.say("Say what to draw, e.g. “a cat to the left of a dog”.", true); this.prompt.focus(); return; }
    if (this.busy) return;
    this.busy = true;
    this.button.disabled = true;
    this.result.replaceChildren();
    this.say("Composing from the library…");
    const body = { prompt, size: this.size.value };
    if (this.seed.value !== "") body.seed = Number(this.seed.value);
    try {
      const acc = await postJSON("/v1/generations", body);
      let g = await getJSON(acc.url);
      const deadline = Date.now() + 120000;
      while ((g.status === "queued" || g.status === "running") && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 300));
        g = await getJSON(acc.url);
      }
      if (g.status !== "done") { this.say(g.error || `The generation is ${g.status}.`, true); return; }
      this.render(g);
    } catch (e) {
      this.say(e.message, true);
    } finally {
      this.busy = false;
      this.button.disabled = false;
    }
  }

  render(g) {
    const r = g.results[0];
    const ok = r.checks.filter((c) => c.satisfied).length;
    this.say(`${ok} of ${r.checks.length} checks confirmed (seed ${r.seed}, ${r.attempts} attempt${r.attempts === 1 ? "" : "s"}).`);
    const checks = h("ul.create-checks", { "aria-label": "Checks" }, r.checks.map((c) =>
      h(`li.${c.satisfied ? "check-ok" : "check-no"}`, {},
        h("span.check-mark", { "aria-hidden": "true" }, c.satisfied ? "✓" : "✗"),
        h("span.visually-hidden", {}, c.satisfied ? "confirmed: " : "not confirmed: "),
        h("strong", {}, c.constraint), " — ", c.detail)));
    const sources = h("ul.create-sources", { "aria-label": "Made from" }, r.provenance.map((p) =>
      h("li", {}, h("a", { href: p.file_url, target: "_blank", rel: "noopener" },
        h("img", { src: p.thumbnail_url, alt: `source of the ${p.concept} (${p.role})`, loading: "lazy" }),
        h("span", {}, `${p.role}: ${p.concept} (${p.cut})`)))));
    this.result.replaceChildren(
      h("figure.create-figure", {},
        h("img.create-image", { src: r.file_url, alt: `Generated: ${g.prompt}` }),
        h("figcaption", {}, g.prompt)),
      h("h3", {}, "Checks"), checks,
      h("h3", {}, "Made from"), sources,
      ...(r.notes || []).map((n) => h("p.muted", {}, n)));
  }
}

const form = $("#create-form");
if (form) {
  new Creator({ form, prompt: $("#create-prompt"), seed: $("#create-seed"), size: $("#create-size"),
    button: $("#create-btn"), status: $("#create-status"), result: $("#create-result") });
}
