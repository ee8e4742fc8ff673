// Drag-and-drop upload: one request per file (so each has its own progress bar), then the
// indexing job is polled until done or failed. Errors are shown per file in plain words.

import { authHeaders, errorMessage, getJSON } from "./api.js";
import { fmtBytes, h, sleep } from "./util.js";

const STAGE_WORDS = {
  queued: "Waiting in line", decode: "Reading the file", decoded: "Waiting for the model",
  model: "Looking at it", done: "Finishing",
};
const CONCURRENCY = 2;

export class Uploader {
  constructor({ list, summary, onIndexed }) {
    Object.assign(this, { list, summary, onIndexed });
    this.queue = [];
    this.active = 0;
    this.counts = { done: 0, failed: 0, total: 0 };
  }

  add(files) {
    for (const f of files) {
      const row = this.row(f);
      this.list.append(row.li);
      this.queue.push({ file: f, row });
      this.counts.total++;
    }
    this.updateSummary();
    this.pump();
  }

  row(file) {
    const bar = h("progress", { max: 1, value: 0, "aria-label": `Progress of ${file.name}` });
    const status = h("span.up-status", {}, "Waiting to upload");
    const error = h("p.up-error", { role: "alert", hidden: true });
    const li = h("li.up-item", { dataset: { filename: file.name, state: "waiting" } },
      h("div.up-line", {}, h("span.up-name", { title: file.name }, file.name),
        h("span.muted.up-size", {}, fmtBytes(file.size))),
      bar, status, error);
    return { li, bar, status, error };
  }

  set(row, state, text, value) {
    row.li.dataset.state = state;
    row.status.textContent = text;
    if (value === null) row.bar.removeAttribute("value");
    else if (value !== undefined) row.bar.value = value;
  }

  fail(row, message) {
    this.set(row, "failed", "Not indexed", 0);
    row.error.textContent = message;
    row.error.hidden = false;
    this.counts.failed++;
    this.updateSummary();
  }

  updateSummary() {
    const { done, failed, total } = this.counts;
    const busy = total - done - failed;
    const parts = [];
    if (busy) parts.push(`${busy} in progress`);
    if (done) parts.push(`${done} indexed`);
    if (failed) parts.push(`${failed} failed`);
    this.summary.textContent = parts.length ? `(${parts.join(", ")})` : "";
  }

  async pump() {
    while (this.active < CONCURRENCY && this.queue.length) {
      const job = this.queue.shift();
      this.active++;
      this.run(job).finally(() => { this.active--; this.pump(); });
    }
  }

  async run({ file, row }) {
    let item;
    try {
      item = await this.send(file, row);
    } catch (e) {
      this.fail(row, e.message);
      return;
    }
    if (item.error) { this.fail(row, item.error.message); return; }
    row.li.dataset.mediaId = item.media_id || "";
    if (!item.job_id) {
      this.set(row, "done", item.duplicate ? "Already in your library" : "Indexed", 1);
      this.counts.done++;
      this.updateSummary();
      this.onIndexed?.(item);
      return;
    }
    await this.poll(item, row);
  }

  send(file, row) {
    return new Promise((resolve, reject) => {
      const fd = new FormData();
      fd.append("files", file, file.name);
      const xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/media");
      for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
      xhr.responseType = "json";
      this.set(row, "uploading", "Uploading 0%", 0);
      xhr.upload.onprogress = (ev) => {
        if (!ev.lengthComputable) return;
        const f = ev.loaded / ev.total;
        // the bar covers upload (first 30%) then indexing (the rest)
        this.set(row, "uploading", `Uploading ${Math.round(f * 100)}%`, 0.3 * f);
      };
      xhr.onerror = () => reject(new Error(errorMessage(null, 0)));
      xhr.onload = () => {
        const body = xhr.response;
        const item = body && body.items && body.items[0];
        if (item) resolve(item);
        else reject(new Error(errorMessage(body, xhr.status)));
      };
      xhr.send(fd);
    });
  }

  async poll(item, row) {
    const dup = item.duplicate ? " (already uploaded before)" : "";
    this.set(row, "indexing", `Queued${dup}`, 0.3);
    let delay = 400;
    for (;;) {
      let j;
      try {
        j = await getJSON(`/v1/jobs/${encodeURIComponent(item.job_id)}`);
      } catch (e) {
        if (e.status === 0) { await sleep(2000); continue; }
        this.fail(row, e.message);
        return;
      }
      if (j.status === "done") {
        this.set(row, "done", `Indexed${dup}`, 1);
        this.counts.done++;
        this.updateSummary();
        this.onIndexed?.(item);
        return;
      }
      if (j.status === "failed") {
        this.fail(row, plainJobError(j.error, item.filename));
        return;
      }
      const stage = STAGE_WORDS[j.stage] || (j.stage ? `Working: ${j.stage}` : "Waiting in line");
      const p = Math.max(0, Math.min(1, j.progress || 0));
      this.set(row, "indexing", `${stage} · ${Math.round(p * 100)}%`, 0.3 + 0.7 * p);
      await sleep(delay);
      delay = Math.min(1500, delay * 1.3);
    }
  }
}

function plainJobError(err, filename) {
  if (!err) return `${filename}: indexing failed (no reason given).`;
  return err.startsWith(filename) ? err : `${filename}: ${err}`;
}
