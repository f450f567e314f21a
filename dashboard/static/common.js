/* Entropy Atlas dashboard: helpers shared by every page (no dependencies but plotly.js). */
"use strict";

const Atlas = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);

  /** GET a JSON document; the browser revalidates with the server's ETag (304 while unchanged). */
  async function getJSON(url, options = {}) {
    const early = window.AtlasPrefetch && window.AtlasPrefetch.get(url);
    if (early) window.AtlasPrefetch.delete(url);
    const response = await (early || fetch(url, {cache: "no-cache", headers: {Accept: "application/json"}, ...options}));
    if (!response.ok) {
      let detail = "";
      try { detail = (await response.json()).detail; } catch (_) { /* not JSON */ }
      const error = new Error(detail || `${response.status} ${response.statusText}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  const enc = encodeURIComponent;
  const api = (campaign, tail = "") => `/api/campaigns/${enc(campaign)}${tail}`;
  const campaignUrl = (campaign) => `/campaigns/${enc(campaign)}`;
  const evaluationUrl = (campaign, id) => `/campaigns/${enc(campaign)}/evaluations/${enc(id)}`;

  /** An element: el("a", {href: "/", class: "x", text: "hi"}, child, "text"…). Text is never parsed as HTML. */
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
      else if (value === true) node.setAttribute(key, "");
      else node.setAttribute(key, String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  /**
   * User text (a campaign's, measure's, objective's or proposer's name) for plotly to show as
   * it is, in titles, axis titles, legends, tick labels and hover templates. Plotly renders a
   * few HTML tags in all of them (`<b>`, `<a href>`, `<span style>`) and fills in `%{…}` in
   * hover templates. So `&`, `<`, `>` and `"` become entities, and `%` becomes `&#37;`, which
   * no template matches; plotly decodes the entities when it draws, and shows the text.
   */
  function plotText(value) {
    return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
      .replace(/"/g, "&quot;").replace(/%/g, "&#37;");
  }

  /**
   * A measure's or the objective's name as an axis, a colour bar or a column header names the
   * quantity: `mean_entropy (nats)` where `units` (a campaign summary's `units`: name -> unit)
   * gives it a unit, the name alone otherwise; archive/units.py's rule, which the figures and
   * the CLI's tables follow. Plain text: a plotly slot takes it through plotText.
   */
  function withUnit(name, units) {
    const unit = units && Object.prototype.hasOwnProperty.call(units, name) ? units[name] : "";
    return unit ? `${name} (${unit})` : String(name);
  }

  /**
   * A campaign's evaluations written and not finished (`counts.pending + counts.running`), as
   * `atlas status` shows them: while a run holds the campaign (state `running`, a live lease)
   * they are `in flight`; with none holding it (stopped, interrupted, killed) none is in
   * flight: they are `pending`, waiting for `atlas resume`. `text` is the count with its label.
   */
  function unfinished(state, counts) {
    const n = counts.pending + counts.running;
    const live = state === "running";
    const label = live ? "in flight" : "pending";
    return {n, live, label, text: `${Number(n).toLocaleString("en-US")} ${label}`};
  }

  function num(value, digits = 4) {
    if (value === null || value === undefined || Number.isNaN(value)) return "—";
    if (typeof value !== "number") return String(value);
    if (Number.isInteger(value) && Math.abs(value) < 1e9) return value.toLocaleString("en-US");
    const abs = Math.abs(value);
    if (abs !== 0 && (abs >= 1e6 || abs < 1e-3)) return value.toExponential(digits - 1);
    return String(Number(value.toPrecision(digits)));
  }

  const int = (value) => (value === null || value === undefined ? "—" : Number(value).toLocaleString("en-US"));
  const pct = (value, digits = 1) => (value === null || value === undefined ? "—" : `${(100 * value).toFixed(digits)}%`);

  /** A parameter value, short: vectors show their first few entries and their length. */
  function short(value, items = 4) {
    if (Array.isArray(value)) {
      const head = value.slice(0, items).map((v) => short(v, items));
      return `[${head.join(", ")}${value.length > items ? `, … (${value.length})` : ""}]`;
    }
    if (typeof value === "number") return num(value);
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  /** A value in full, for detail tables. */
  function full(value) {
    if (typeof value === "number") return String(value);
    if (value === null || value === undefined) return "—";
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function when(ts) {
    if (!ts) return "—";
    return new Date(ts * 1000).toLocaleString();
  }

  function ago(ts) {
    if (!ts) return "—";
    const s = Math.max(0, Date.now() / 1000 - ts);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${(s / 3600).toFixed(1)} h ago`;
    return `${(s / 86400).toFixed(1)} d ago`;
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "—";
    if (seconds < 1) return `${(seconds * 1000).toFixed(1)} ms`;
    if (seconds < 120) return `${seconds.toFixed(2)} s`;
    return `${(seconds / 60).toFixed(1)} min`;
  }

  function badge(node, state) {
    node.textContent = state;
    node.className = `badge ${state}`;
    node.title = state === "interrupted"
      ? "marked running, but its scheduler's lease has lapsed: continue it with `atlas resume`" : "";
    return node;
  }

  function card(label, value, sub, href) {
    const v = href ? el("a", {href, text: value}) : value;
    return el("div", {class: "card"}, el("div", {class: "label", text: label}),
      el("div", {class: "value"}, v), sub ? el("div", {class: "sub", text: sub}) : null);
  }

  /** The live indicator in the top bar. */
  function live(state, text) {
    const node = document.getElementById("live-indicator");
    if (!node) return;
    node.hidden = false;
    node.className = `live-indicator ${state}`;
    node.textContent = text;
  }

  function showError(error) {
    const node = document.getElementById("page-error");
    if (!node) return;
    node.hidden = !error;
    node.textContent = error ? String(error.message || error) : "";
  }

  /**
   * Whether a failed request is final: a `4xx` (but 408 and 429) is the storage answering, and asking the same
   * again gets the same answer (a `422`: a value it cannot hold). A `5xx` (the storage not
   * answering) or no status (the network) may pass: those are retried.
   */
  const RETRIED_4XX = [408, 429];  // a timeout or "too many requests" (a proxy's): try again later
  const isFinal = (error) => Boolean(error) && error.status >= 400 && error.status < 500
    && !RETRIED_4XX.includes(error.status);

  /** A final answer that says the campaign (or evaluation) is not there: a `404` (deleted, or never was). */
  const isGone = (error) => Boolean(error) && error.status === 404;

  /**
   * Calls `tick()` now and then every `fast` seconds while `isLive()` says the data moves,
   * every `slow` seconds otherwise; pauses while the tab is hidden. A `5xx` or network error
   * is retried with backoff (up to 60 s); a `4xx` (isFinal) stops polling: a `404` (isGone)
   * and the live indicator says `gone`, any other that the storage refused the request. The
   * page's error line says what the storage answered (its `detail`).
   */
  class Poller {
    constructor(tick, {fast = boot.poll_s || 2, slow = Math.max(10, 5 * (boot.poll_s || 2)), isLive = () => true,
      gone = "gone from this storage · stopped checking"} = {}) {
      this.tick = tick;
      this.fast = fast;
      this.slow = slow;
      this.isLive = isLive;
      this.goneText = gone;
      this.gone = false;
      this.final = null;  // the 4xx that stopped polling, and the indicator's text for it
      this.failures = 0;
      this.timer = null;
      this.running = false;
      document.addEventListener("visibilitychange", () => {
        if (!document.hidden && this.running) this.now();
      });
    }

    start() { this.running = true; this.gone = false; this.final = null; this.now(); return this; }

    stop() { this.running = false; clearTimeout(this.timer); }

    async now() {
      clearTimeout(this.timer);
      if (!this.running) return;
      try {
        await this.tick();
        if (this.final) return this.showFinal();  // a tick that overlapped a final answer does not undo it
        this.failures = 0;
        showError(null);
      } catch (error) {
        if (this.final) return this.showFinal();
        if (isFinal(error)) {
          this.stop();
          this.gone = isGone(error);
          const text = this.gone ? this.goneText : `storage refused the request (${error.status}) · stopped checking`;
          this.final = {error, text};
          return this.showFinal();
        }
        showError(error);
        this.failures += 1;
        live("error", "storage not answering; retrying");
      }
      this.schedule();
    }

    /** The final answer on the error line (its `detail`) and in the live indicator. */
    showFinal() {
      showError(this.final.error);
      live("gone", this.final.text);
    }

    schedule() {
      if (!this.running) return;
      let delay = this.isLive() ? this.fast : this.slow;
      if (this.failures) delay = Math.min(60, delay * 2 ** Math.min(this.failures, 5));
      this.timer = setTimeout(() => { if (!document.hidden) this.now(); else this.schedule(); }, delay * 1000);
    }
  }

  const plotFont = {family: getComputedStyle(document.body).fontFamily, size: 12, color: "#1d2330"};

  /** Draw or update a figure in place (zoom and hidden traces are kept across updates). */
  function plot(node, traces, layout = {}, config = {}) {
    const base = {
      font: plotFont, margin: {l: 56, r: 16, t: 34, b: 44}, paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff", hoverlabel: {align: "left", font: {family: plotFont.family, size: 12}},
      xaxis: {gridcolor: "#eef0f3", zeroline: false}, yaxis: {gridcolor: "#eef0f3", zeroline: false},
      legend: {orientation: "h", x: 1, xanchor: "right", y: 1.0, yanchor: "bottom", font: {size: 11}},
    };
    const merged = {...base, ...layout};
    if (layout.title) merged.title = {x: 0.01, xanchor: "left", ...layout.title};
    if (layout.legend) merged.legend = {...base.legend, ...layout.legend};
    merged.xaxis = {...base.xaxis, ...(layout.xaxis || {})};
    merged.yaxis = {...base.yaxis, ...(layout.yaxis || {})};
    return Plotly.react(node, traces, merged, {displaylogo: false, responsive: true, displayModeBar: false,
      modeBarButtonsToRemove: ["lasso2d", "select2d"], ...config});
  }

  function emptyPlot(node, message) {
    return plot(node, [], {xaxis: {visible: false}, yaxis: {visible: false},
      annotations: [{text: message, showarrow: false, font: {color: "#667085"}, xref: "paper", yref: "paper", x: 0.5, y: 0.5}]});
  }

  const PALETTE = ["#3b5bdb", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#1098ad", "#f08c00", "#5c940d", "#862e9c", "#495057"];
  const colour = (i) => PALETTE[i % PALETTE.length];

  /** Rows of a key/value table. */
  function kvRows(table, pairs) {
    clear(table, pairs.map(([k, v]) => el("tr", {}, el("th", {text: k}), el("td", {}, v instanceof Node ? v : full(v)))));
  }

  return {boot, getJSON, api, campaignUrl, evaluationUrl, el, clear, plotText, withUnit, unfinished, num, int, pct,
    short, full, when, ago, duration, badge, card, live, showError, isFinal, isGone, Poller, plot, emptyPlot, colour, kvRows};
})();
