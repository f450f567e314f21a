/* One campaign: elite map, progress, objective against measures, proposers, model calls, failures.
 * Polls the campaign's summary; when its `version` moves, refetches the views and redraws
 * them in place (no reload, zoom kept). */
"use strict";

(() => {
  const {boot, el, clear, api, num, int, pct, short, getJSON} = Atlas;
  const name = boot.campaign;
  const $ = (id) => document.getElementById(id);

  let summary = null;
  let version = null;
  let layout = null;
  let elites = null;
  let scatterData = null;
  let pinned = null;
  let failLimit = 20;
  const scatterPlots = new Map();

  const map = new EliteMap($("elite-map"), {onHover: (i) => { if (pinned === null) showElite(i); }, onClick: (i) => pin(i)});

  // -- summary ------------------------------------------------------------------
  function renderSummary(s) {
    summary = s;
    $("camp-name").textContent = s.name;
    Atlas.badge($("camp-state"), s.state);
    const dir = s.objective.direction === "maximize" ? "maximise" : "minimise";
    $("camp-algo").textContent = `${s.algorithm} · ${dir} ${s.objective.name} · ${s.archive.kind} map of ${int(s.archive.cells)} cells`;
    $("compare-link").href = `/compare?a=${encodeURIComponent(s.name)}`;
    const st = s.stats;
    $("progress-bar").style.width = `${(100 * s.progress).toFixed(2)}%`;
    const waiting = Atlas.unfinished(s.state, st.counts);  // in flight, or pending where no run holds it
    const resume = waiting.live || !waiting.n ? "" : ` (\`atlas resume ${s.name}\` runs them)`;
    $("progress-text").textContent = `${int(st.finished)} of ${int(s.budget)} evaluations finished` +
      ` · ${waiting.text}${resume} · ${int(st.counts.failed)} failed · updated ${Atlas.ago(s.updated_at)}`;
    const best = st.best_evaluation_id ? Atlas.evaluationUrl(name, st.best_evaluation_id) : null;
    clear($("cards"),
      Atlas.card("evaluations", int(st.finished), `of ${int(s.budget)} (${pct(s.progress)})`),
      Atlas.card("coverage", pct(st.coverage), `${int(st.elites)} of ${int(st.cells)} cells`),
      Atlas.card("QD-score", num(st.qd_score, 6), "Σ (fitness − offset) over elites"),
      Atlas.card(`best ${s.objective.name}`, num(st.best_objective, 6),
        st.best_evaluation_id ? `evaluation ${st.best_evaluation_id}` : "none yet", best),
      Atlas.card("failed", int(st.counts.failed), st.finished ? `${pct(st.counts.failed / st.finished)} of finished` : ""),
      Atlas.card(waiting.label, int(waiting.n), waiting.live ? `${int(st.counts.running)} running` : "atlas resume runs them"),
    );
    $("spec").textContent = JSON.stringify(s.spec, null, 2);
    document.title = `${s.name} · Entropy Atlas`;
    if (s.state === "running") Atlas.live("live", `live · polling every ${boot.poll_s} s`);
    else Atlas.live("idle", `${s.state} · checking every ${Math.max(10, 5 * boot.poll_s)} s`);
  }

  // -- the map and its inspector ---------------------------------------------------
  function renderMapCaption() {
    const filled = Number($("elite-map").dataset.filledCells || 0);
    const extra = layout.axes.length > 2 ? ` (${int(filled)} pixels in this projection)` : "";
    $("map-caption").textContent = `${int(elites.count)} elites in ${int(layout.cells)} cells${extra}`;
  }

  function eliteRows(i) {
    const e = elites;
    const rows = [["cell", e.cell[i]], [summary.objective.name, num(e.objective[i], 6)]];
    for (const m of e.measure_names) rows.push([m, num(e.measures[m][i], 6)]);
    for (const p of e.param_names) {
      const v = e.params[p][i];
      if (v !== null && v !== undefined) rows.push([p, short(v, 10)]);
    }
    rows.push(["proposer", e.proposer[i]], ["seq", e.seq[i]]);
    return rows;
  }

  function showElite(i) {
    const table = el("table", {class: "table kv"});
    Atlas.kvRows(table, eliteRows(i));
    clear($("inspector"), el("h3", {text: `Elite of cell ${elites.cell[i]}`}),
      el("p", {class: "muted", text: `evaluation ${elites.evaluation_id[i]} · click the cell to open it`}), table);
  }

  async function pin(i) {
    pinned = i;
    const id = elites.evaluation_id[i];
    const close = el("button", {type: "button", text: "×", title: "unpin", onclick: () => { pinned = null; clear($("inspector"), el("p", {class: "muted", text: "Hover a cell to see its elite; click it to open that evaluation."})); }});
    clear($("inspector"), el("div", {class: "title-row"}, el("h3", {text: `Evaluation ${id}`}), el("span", {class: "spacer"}), close),
      el("p", {class: "muted", text: "loading…"}));
    try {
      const detail = await getJSON(api(name, `/evaluations/${id}`));
      if (pinned !== i) return;
      const ev = detail.evaluation;
      const rows = [["status", ev.status], [detail.objective_name, num(ev.objective, 8)]];
      for (const m of detail.measure_names) rows.push([m, num((ev.measures || {})[m], 8)]);
      for (const [k, v] of Object.entries(ev.params || {})) rows.push([k, short(v, 12)]);
      rows.push(["cell", ev.cell], ["proposer", ev.proposer], ["attempts", ev.attempts], ["worker", ev.worker || "—"],
        ["finished", Atlas.when(ev.finished_at)]);
      for (const [k, v] of Object.entries(ev.metrics || {})) rows.push([`metric ${k}`, short(v, 6)]);
      const table = el("table", {class: "table kv"});
      Atlas.kvRows(table, rows);
      clear($("inspector"), el("div", {class: "title-row"}, el("h3", {text: `Evaluation ${id}`}), el("span", {class: "spacer"}), close),
        el("p", {}, el("a", {class: "button", href: Atlas.evaluationUrl(name, id), text: "Open evaluation page →"})), table);
    } catch (error) {
      clear($("inspector"), el("p", {class: "error-banner", text: String(error.message || error)}));
    }
  }

  async function loadMap(first) {
    // after the first load, only the elites that changed since (merged by cell)
    const since = elites ? elites.through : 0;
    const [lay, eli] = await Promise.all([layout ? Promise.resolve(layout) : getJSON(api(name, "/layout")),
      getJSON(api(name, since ? `/elites?since=${since}` : "/elites"))]);
    layout = lay;
    elites = EliteMap.merge(elites, eli) || await getJSON(api(name, "/elites"));
    map.setData({layout, elites, objective: summary.objective.name, direction: summary.objective.direction, campaign: name,
      units: summary.units});
    map.controls($("map-controls"));
    await map.draw();
    renderMapCaption();
    renderTop();
    if (first && pinned === null && elites.count) $("inspector").dataset.ready = "1";
  }

  // -- best elites ------------------------------------------------------------------
  function renderTop() {
    const e = elites;
    const shown = Math.min(10, e.count);
    const sign = summary.objective.direction === "minimize" ? -1 : 1;
    const order = e.cell.map((_, i) => i).sort((a, b) => sign * (e.objective[b] - e.objective[a]) || e.cell[a] - e.cell[b]);
    $("top-caption").textContent = e.count ? `${shown} of ${int(e.count)}, best first` : "no elites yet";
    const params = e.param_names.slice(0, 6);
    const quantities = [summary.objective.name, ...e.measure_names].map((q) => Atlas.withUnit(q, summary.units));
    const head = el("tr", {}, ["#", "evaluation", "cell", ...quantities, ...params, "proposer"]
      .map((h, j) => el("th", {class: j >= 3 && j < 3 + quantities.length ? "num" : "", text: h})));
    const rows = [];
    for (let rank = 0; rank < shown; rank++) {
      const i = order[rank];
      rows.push(el("tr", {},
        el("td", {text: rank + 1}),
        el("td", {}, el("a", {href: Atlas.evaluationUrl(name, e.evaluation_id[i]), text: e.evaluation_id[i]})),
        el("td", {text: e.cell[i]}),
        el("td", {class: "num", text: num(e.objective[i], 6)}),
        e.measure_names.map((m) => el("td", {class: "num", text: num(e.measures[m][i])})),
        params.map((p) => el("td", {text: short(e.params[p][i])})),
        el("td", {text: e.proposer[i]})));
    }
    clear($("top-table"), el("thead", {}, head), el("tbody", {}, rows));
  }

  // -- progress ---------------------------------------------------------------------
  async function loadHistory() {
    const h = await getJSON(api(name, "/history"));
    $("history-caption").textContent = h.total ? `after each of ${int(h.total)} finished evaluations` +
      (h.evaluations.length < h.total ? ` (${int(h.evaluations.length)} points shown)` : "") : "";
    const line = (y, colour) => [{type: "scatter", mode: "lines", x: h.evaluations, y, line: {color: colour, width: 2},
      hovertemplate: "%{y}<br>after %{x} evaluations<extra></extra>"}];
    const axes = (title, extra = {}) => ({title: {text: title, font: {size: 13}}, showlegend: false,
      xaxis: {title: {text: "evaluations finished"}}, yaxis: extra});
    if (!h.total) {
      for (const id of ["plot-qd", "plot-coverage", "plot-best"]) Atlas.emptyPlot($(id), "no results yet");
      return;
    }
    Atlas.plot($("plot-qd"), line(h.qd_score, "#3b5bdb"), axes("QD-score"));
    Atlas.plot($("plot-coverage"), line(h.coverage, "#2b8a3e"), axes("coverage", {tickformat: ".0%", rangemode: "tozero"}));
    const bestTitle = Atlas.plotText(Atlas.withUnit(summary.objective.name, summary.units));
    Atlas.plot($("plot-best"), line(h.best, "#e8590c"), axes(`best ${bestTitle}`));
  }

  // -- objective against measures -------------------------------------------------------
  function renderScatter() {
    const s = scatterData;
    if (!s) return;
    const direction = $("front-dir").value;
    $("scatter-caption").textContent = s.total
      ? `${int(s.shown)} of ${int(s.total)} done evaluations shown; fronts over all of them` : "no results yet";
    const objectiveText = Atlas.plotText(summary.objective.name);
    const objectiveTitle = Atlas.plotText(Atlas.withUnit(summary.objective.name, summary.units));
    const better = s.objective_direction === "maximize" ? "higher" : "lower";
    for (const m of s.measure_names) {
      const measureText = Atlas.plotText(m);
      const measureTitle = Atlas.plotText(Atlas.withUnit(m, summary.units));
      let node = scatterPlots.get(m);
      if (!node) {
        node = el("div", {class: "plot"});
        $("scatter-plots").append(node);
        scatterPlots.set(m, node);
      }
      const p = s.points;
      const pick = (flag) => p.evaluation_id.map((_, i) => i).filter((i) => p.elite[i] === flag);
      const trace = (idx, label, style) => ({
        type: "scatter", mode: "markers", name: label, x: idx.map((i) => p.measures[m][i]), y: idx.map((i) => p.objective[i]),
        customdata: idx.map((i) => p.evaluation_id[i]), marker: style,
        hovertemplate: `evaluation %{customdata}<br>${objectiveText}: %{y}<br>${measureText}: %{x}<extra>${label}</extra>`,
      });
      const front = s.fronts[m][direction];
      const traces = [
        trace(pick(false), "evaluations", {size: 4, color: "rgba(120,130,150,0.35)"}),
        trace(pick(true), "elites", {size: 5, color: "rgba(59,91,219,0.75)"}),
        {type: "scatter", mode: "lines+markers", name: "Pareto front", x: front.measure, y: front.objective,
          customdata: front.evaluation_id, line: {shape: direction === "higher" ? "vh" : "hv", color: "#e8590c", width: 2},
          marker: {size: 7, color: "#e8590c"},
          hovertemplate: `front: evaluation %{customdata}<br>${objectiveText}: %{y}<br>${measureText}: %{x}<extra></extra>`},
      ];
      Atlas.plot(node, traces, {
        title: {text: `${objectiveText} against ${measureText}`, font: {size: 13}},
        xaxis: {title: {text: `${measureTitle} (front: ${direction} is better)`}},
        yaxis: {title: {text: `${objectiveTitle} (${better} is better)`}}, uirevision: `${m}:${direction}`,
      }).then(() => {
        if (!node.dataset.bound) {
          node.dataset.bound = "1";
          node.on("plotly_click", (ev) => {
            const id = ev.points && ev.points[0] && ev.points[0].customdata;
            if (id) window.location.href = Atlas.evaluationUrl(name, id);
          });
        }
      });
    }
  }

  async function loadScatter() {
    scatterData = await getJSON(api(name, "/scatter"));
    renderScatter();
  }

  // -- proposers --------------------------------------------------------------------------
  async function loadProposers() {
    const p = await getJSON(api(name, "/proposers"));
    const names = p.proposers.map((r) => r.name);
    const labels = names.map(Atlas.plotText);  // as plotly shows them: ticks, legend, hover
    $("proposer-caption").textContent = names.length === 1 ? "one proposer" : `${names.length} proposers`;
    const bar = (key, label, colour) => ({type: "bar", name: label, x: labels, y: p.proposers.map((r) => r.counts[key]),
      marker: {color: colour}, hovertemplate: `%{x}: %{y} ${label}<extra></extra>`});
    const unfinished = p.proposers.map((r) => Atlas.unfinished(summary.state, r.counts));  // in flight, or pending
    const waiting = Atlas.unfinished(summary.state, summary.stats.counts).label;
    const inflight = {type: "bar", name: Atlas.plotText(waiting), x: labels, y: unfinished.map((u) => u.n), marker: {color: "#adb5bd"}};
    Atlas.plot($("plot-proposer-counts"), [bar("done", "done", "#3b5bdb"), bar("failed", "failed", "#c92a2a"), inflight],
      {title: {text: "evaluations by proposer", font: {size: 13}}, barmode: "stack"});
    const t = p.over_time;
    Atlas.plot($("plot-proposer-qd"), names.map((n, i) => ({type: "scatter", mode: "lines", name: labels[i], x: t.evaluations,
      y: t.qd_contribution[n], line: {color: Atlas.colour(i), width: 2}})),
    {title: {text: "QD-score gained, by proposer", font: {size: 13}}, xaxis: {title: {text: "evaluations finished"}}});
    const runs = p.proposers.map((r) => r.exploration || {mean: null, std: null, runs: 0, run_length: p.exploration_run_length});
    const entropyText = (e) => e.mean === null ? `— (fewer than ${e.run_length})`
      : `${e.mean.toFixed(2)}${e.std === null ? "" : ` ± ${e.std.toFixed(2)}`} (${e.runs} run${e.runs === 1 ? "" : "s"} of ${e.run_length})`;
    Atlas.plot($("plot-exploration"), [{type: "bar", x: labels, y: runs.map((e) => e.mean),
      error_y: {type: "data", array: runs.map((e) => e.std || 0), visible: true},
      marker: {color: names.map((_, i) => Atlas.colour(i))}, text: runs.map(entropyText), textposition: "none",
      hovertemplate: "%{x}: %{text}<extra></extra>"}],
    {title: {text: `exploration entropy per run of ${p.exploration_run_length} (0: one option, 1: uniform)`, font: {size: 13}},
      yaxis: {range: [0, 1]},
      showlegend: false});
    const head = el("tr", {}, ["proposer", "evaluations", "done", "failed", waiting, "elites held", "improvements",
      "QD-score gained", `best ${summary.objective.name}`, "exploration entropy"].map((h, j) => el("th", {class: j ? "num" : "", text: h})));
    const rows = p.proposers.map((r, i) => el("tr", {},
      el("td", {text: r.name}), el("td", {class: "num", text: int(r.evaluations)}), el("td", {class: "num", text: int(r.counts.done)}),
      el("td", {class: "num", text: int(r.counts.failed)}), el("td", {class: "num", text: int(unfinished[i].n)}),
      el("td", {class: "num", text: int(r.elites)}), el("td", {class: "num", text: int(r.improvements)}),
      el("td", {class: "num", text: num(r.qd_contribution, 6)}), el("td", {class: "num", text: num(r.best_objective, 6)}),
      el("td", {class: "num", text: entropyText(runs[i]),
        title: `Iron Mind's normalised sampling entropy per run of ${p.exploration_run_length} evaluations, active ` +
          `parameters only, ${p.exploration_bins} bins per continuous coordinate: mean ± std over the runs`})));
    clear($("proposer-table"), el("thead", {}, head), el("tbody", {}, rows));
  }

  // -- model calls ------------------------------------------------------------------------
  // The latest problem, as `atlas status NAME` says it: the latest failed call's error, or the
  // latest unusable reply's reason where that came later; null where there is neither.
  function latestProblem(c) {
    const errorAt = c.latest_error_at, unusableAt = c.latest_unusable_at;
    if (errorAt === null && unusableAt === null) return null;
    if (unusableAt !== null && (errorAt === null || unusableAt > errorAt)) {
      return {text: `unusable reply: ${c.latest_unusable || "(no reason)"}`, at: unusableAt};
    }
    return {text: c.latest_error || "(no message)", at: errorAt};
  }

  async function loadModelCalls() {
    const rows = (await getJSON(api(name, "/model-calls"))).model_calls;
    $("calls-empty").hidden = rows.length > 0;
    $("calls-caption").textContent = !rows.length ? ""
      : rows.length === 1 ? "one proposer called a model" : `${rows.length} proposers called a model`;
    if (!rows.length) {
      clear($("calls-table"));
      return;
    }
    const heads = ["proposer", "calls", "answered", "failed", "unusable replies", "candidates accepted", "tokens",
      "median latency", "latest error"];
    const head = el("tr", {}, heads.map((h, j) => el("th", {class: j && j < heads.length - 1 ? "num" : "", text: h})));
    const body = rows.map((c) => {
      const problem = latestProblem(c);
      return el("tr", {},
        el("td", {text: c.proposer}), el("td", {class: "num", text: int(c.calls)}),
        el("td", {class: "num", text: int(c.answered)}), el("td", {class: "num", text: int(c.failed)}),
        el("td", {class: "num", text: int(c.unusable)}), el("td", {class: "num", text: int(c.accepted)}),
        el("td", {class: "num", text: int(c.tokens)}), el("td", {class: "num", text: Atlas.duration(c.median_latency_s)}),
        el("td", {}, problem ? [el("code", {text: problem.text}), ` (${Atlas.when(problem.at)})`] : "—"));
    });
    clear($("calls-table"), el("thead", {}, head), el("tbody", {}, body));
  }

  // -- failures ---------------------------------------------------------------------------
  async function loadFailures() {
    const f = await getJSON(api(name, `/failures?limit=${failLimit}`));
    const finished = summary ? summary.stats.finished : 0;
    $("fail-caption").textContent = f.total
      ? `${int(f.total)} failed${finished ? ` (${pct(f.total / finished)} of finished)` : ""}` : "none failed";
    if (!f.total) {
      clear($("fail-groups"));
      clear($("fail-list"), el("p", {class: "empty", text: "No evaluation has failed."}));
      $("fail-more").hidden = true;
      return;
    }
    const head = el("tr", {}, el("th", {class: "num", text: "count"}), el("th", {text: "error"}), el("th", {text: "latest"}));
    const rows = f.groups.map((g) => el("tr", {},
      el("td", {class: "num", text: int(g.count)}), el("td", {}, el("code", {text: g.error})),
      el("td", {}, g.latest_evaluation_id ? el("a", {href: Atlas.evaluationUrl(name, g.latest_evaluation_id),
        text: `evaluation ${g.latest_evaluation_id}`}) : "—")));
    clear($("fail-groups"), el("thead", {}, head), el("tbody", {}, rows));
    const items = f.evaluations.map((ev) => {
      const first = (ev.error || "(no error message)").split("\n")[0];
      return el("details", {class: "failure"},
        el("summary", {}, el("a", {href: Atlas.evaluationUrl(name, ev.id), text: `evaluation ${ev.id}`}),
          ` · ${ev.proposer} · ${ev.attempts} attempt${ev.attempts === 1 ? "" : "s"} · ${Atlas.ago(ev.finished_at)} · `,
          el("span", {class: "err", text: first})),
        el("pre", {class: "code error-text", text: ev.error || ""}),
        el("p", {class: "muted", text: `params: ${Object.entries(ev.params || {}).map(([k, v]) => `${k}=${short(v)}`).join(", ")}`}));
    });
    clear($("fail-list"), el("h3", {class: "muted", text: `latest ${f.evaluations.length} of ${int(f.total)}`}), items);
    $("fail-more").hidden = f.evaluations.length >= f.total || failLimit >= 1000;
  }

  $("fail-more").addEventListener("click", () => { failLimit = Math.min(1000, failLimit + 50); loadFailures().catch(Atlas.showError); });
  $("front-dir").addEventListener("change", renderScatter);

  // -- the loop -------------------------------------------------------------------------
  async function refresh() {
    const first = summary === null;
    const s = await getJSON(api(name));
    renderSummary(s);
    if (s.version === version) return;
    await loadMap(first);
    const rest = await Promise.allSettled([loadHistory(), loadScatter(), loadProposers(), loadModelCalls(), loadFailures()]);
    const failed = rest.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
    version = s.version; // only once everything shown is of this version: a failure retries
  }

  // a 404 (the campaign deleted) stops the polling: the storage answered, asking again cannot bring it back
  new Atlas.Poller(refresh, {isLive: () => summary !== null && summary.state === "running",
    gone: "campaign gone from this storage · stopped checking"}).start();
})();
