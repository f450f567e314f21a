/* Two campaigns side by side: their maps (on one colour scale when they share an objective and its unit),
 * their figures, and their QD-score, coverage and best against evaluations on shared axes. */
"use strict";

(() => {
  const {boot, el, clear, api, num, int, pct, getJSON} = Atlas;
  const $ = (id) => document.getElementById(id);
  const COLOURS = {a: "#3b5bdb", b: "#e8590c"};

  function makeSide(key) {
    const root = $(`side-${key}`);
    const q = (sel) => root.querySelector(sel);
    const side = {
      key, root, name: null, summary: null, version: null, layout: null, history: null, gone: null,
      badge: q(".side-state"),  // held: Atlas.badge replaces its classes, so a second query would find nothing
      map: new EliteMap(q(".side-map"), {onClick: (i) => {
        window.location.href = Atlas.evaluationUrl(side.name, side.map.elites.evaluation_id[i]);
      }}),
    };
    side.render = () => {
      const s = side.summary;
      const link = q(".side-name");
      link.textContent = s.name;
      link.href = Atlas.campaignUrl(s.name);
      link.style.color = COLOURS[key];
      Atlas.badge(side.badge, s.state);
      q(".side-progress").style.width = `${(100 * s.progress).toFixed(2)}%`;
      const st = s.stats;
      clear(q(".side-cards"),
        Atlas.card("evaluations", int(st.finished), `of ${int(s.budget)}`),
        Atlas.card("coverage", pct(st.coverage), `${int(st.elites)} / ${int(st.cells)}`),
        Atlas.card("QD-score", num(st.qd_score, 6)),
        Atlas.card(`best ${s.objective.name}`, num(st.best_objective, 6), "",
          st.best_evaluation_id ? Atlas.evaluationUrl(s.name, st.best_evaluation_id) : null),
        Atlas.card("failed", int(st.counts.failed)));
    };
    return side;
  }

  const sides = {a: makeSide("a"), b: makeSide("b")};
  sides.a.name = boot.a || null;
  sides.b.name = boot.b || null;

  async function fillPickers() {
    const data = await getJSON("/api/campaigns");
    const names = data.campaigns.map((c) => c.name);
    for (const key of ["a", "b"]) {
      const select = $(`pick-${key}`);
      const current = sides[key].name;
      clear(select, el("option", {value: "", text: "— pick a campaign —"}),
        names.map((n) => el("option", {value: n, text: n, selected: n === current})));
    }
    if (!sides.a.name && names.length) { sides.a.name = names[0]; $("pick-a").value = names[0]; }
    if (!sides.b.name && names.length > 1) {
      sides.b.name = names.find((n) => n !== sides.a.name);
      $("pick-b").value = sides.b.name;
    }
    syncUrl();
  }

  function syncUrl() {
    const q = new URLSearchParams();
    if (sides.a.name) q.set("a", sides.a.name);
    if (sides.b.name) q.set("b", sides.b.name);
    history.replaceState(null, "", `/compare?${q}`);
  }

  function showEmpty(side) {
    const empty = !side.name;
    for (const child of side.root.children) child.hidden = child.classList.contains("side-empty") ? !empty : empty;
  }

  /**
   * A side the storage answered a `4xx` for (a `404`: its campaign deleted since it was picked):
   * its figures go, the side says what the storage answered, and it is not asked for again
   * until another is picked. A deleted campaign leaves both pickers too.
   */
  function markGone(side, error) {
    side.gone = String(error.message || error);
    side.goneStatus = error.status;
    side.summary = null;
    side.history = null;
    side.version = null;
    side.map.reset();
    Atlas.clear(side.root.querySelector(".side-cards"), el("p", {class: "error-banner side-gone", text: side.gone}));
    Atlas.badge(side.badge, Atlas.isGone(error) ? "gone" : "refused");
    if (!Atlas.isGone(error)) return;
    for (const key of ["a", "b"]) {
      for (const option of [...$(`pick-${key}`).options]) if (option.value === side.name) option.remove();
    }
  }

  /** Load a side; a 4xx marks it gone (true: it changed), any other error goes to the poller (retried). */
  async function loadSide(side) {
    showEmpty(side);
    if (!side.name || side.gone) return false;
    try {
      return await fetchSide(side);
    } catch (error) {
      if (!Atlas.isFinal(error)) throw error;
      markGone(side, error);
      return true;
    }
  }

  async function fetchSide(side) {
    const s = await getJSON(api(side.name));
    side.summary = s;
    side.render();
    if (s.version === side.version) return false;
    const held = side.map.elites;
    const [layout, delta, hist] = await Promise.all([
      side.layout ? Promise.resolve(side.layout) : getJSON(api(side.name, "/layout")),
      getJSON(api(side.name, held ? `/elites?since=${held.through}` : "/elites")), getJSON(api(side.name, "/history"))]);
    const elites = EliteMap.merge(held, delta) || await getJSON(api(side.name, "/elites"));
    side.layout = layout;
    side.history = hist;
    side.map.setData({layout, elites, objective: s.objective.name, direction: s.objective.direction, campaign: side.name,
      units: s.units});
    side.pendingVersion = s.version;
    return true;
  }

  /** The objective as the two campaigns' summaries name it, with its unit: one quantity where they agree. */
  const objectiveOf = (s) => Atlas.withUnit(s.objective.name, s.units);

  /**
   * Why the two maps cannot share a colour scale, or null where they can: their objectives
   * (names), the objective's units or directions differ; one colour cannot mean one value.
   */
  function scaleConflict() {
    const a = sides.a.summary, b = sides.b.summary;
    if (!a || !b) return null;
    if (a.objective.name !== b.objective.name) return "objectives differ";
    if (objectiveOf(a) !== objectiveOf(b)) return "units differ";
    if (a.objective.direction !== b.objective.direction) return "directions differ";
    return null;
  }

  let wantShared = $("shared-scale").checked;  // the user's choice, kept while the box is disabled

  /** The "same colour scale" box: disabled, unticked and saying why where scaleConflict() forbids it. */
  function syncScaleBox() {
    const box = $("shared-scale");
    const label = box.closest("label");
    let why = $("shared-scale-why");
    if (!why) { why = el("span", {id: "shared-scale-why", class: "muted"}); label.append(why); }
    const conflict = scaleConflict();
    box.disabled = conflict !== null;
    box.checked = conflict === null && wantShared;
    const reason = conflict ? `${conflict}: separate scales` : "";
    why.textContent = reason ? ` (${reason})` : "";
    box.title = label.title = reason || "one colour scale for both maps";
  }

  function sharedRange() {
    const a = sides.a, b = sides.b;
    if (!$("shared-scale").checked || !a.summary || !b.summary || scaleConflict() !== null) return null;
    const ra = a.map.valueRange(), rb = b.map.valueRange();
    if (!ra || !rb) return null;
    return [Math.min(ra[0], rb[0]), Math.max(ra[1], rb[1])];
  }

  async function drawMaps() {
    const range = sharedRange();
    await Promise.all(["a", "b"].filter((k) => sides[k].map.elites).map((k) => {
      sides[k].map.setRange(range);
      return sides[k].map.draw();
    }));
  }

  function drawHistory() {
    const shown = ["a", "b"].filter((k) => sides[k].history && sides[k].summary);
    const traces = (field) => shown.map((k) => ({
      type: "scatter", mode: "lines", name: Atlas.plotText(sides[k].name), x: sides[k].history.evaluations, y: sides[k].history[field],
      line: {color: COLOURS[k], width: 2}}));
    const layout = (title, yaxis = {}) => ({title: {text: title, font: {size: 13}}, xaxis: {title: {text: "evaluations finished"}}, yaxis});
    Atlas.plot($("cmp-qd"), traces("qd_score"), layout("QD-score"));
    Atlas.plot($("cmp-coverage"), traces("coverage"), layout("coverage", {tickformat: ".0%", rangemode: "tozero"}));
    const sameObjective = shown.length === 2 && objectiveOf(sides.a.summary) === objectiveOf(sides.b.summary);
    const bestTitle = Atlas.plotText(sameObjective ? objectiveOf(sides.a.summary) : "");
    Atlas.plot($("cmp-best"), traces("best"), layout(sameObjective ? `best ${bestTitle}` : "best objective (each its own)"));
  }

  function drawTable() {
    const shown = ["a", "b"].filter((k) => sides[k].summary);
    const rows = [
      ["algorithm", (s) => s.algorithm], ["status", (s) => s.state],
      ["objective", (s) => `${s.objective.direction} ${objectiveOf(s)}`],
      ["map", (s) => `${s.archive.kind}, ${int(s.archive.cells)} cells over ${s.archive.axes.map((a) => a.name).join(" × ")}`],
      ["evaluations", (s) => `${int(s.stats.finished)} of ${int(s.budget)}`], ["failed", (s) => int(s.stats.counts.failed)],
      ["coverage", (s) => `${pct(s.stats.coverage)} (${int(s.stats.elites)} cells)`], ["QD-score", (s) => num(s.stats.qd_score, 8)],
      ["best objective", (s) => num(s.stats.best_objective, 8)],
      ["updated", (s) => Atlas.ago(s.updated_at)],
    ];
    clear($("cmp-table"),
      el("thead", {}, el("tr", {}, el("th", {text: ""}), shown.map((k) => el("th", {text: sides[k].name, style: `color:${COLOURS[k]}`})))),
      el("tbody", {}, rows.map(([label, get]) => el("tr", {}, el("th", {text: label}), shown.map((k) => el("td", {text: get(sides[k].summary)}))))));
  }

  async function refresh() {
    const changed = await Promise.all([loadSide(sides.a), loadSide(sides.b)]);
    syncScaleBox();
    if (changed.some(Boolean)) {
      await drawMaps();
      drawHistory();
      for (const k of ["a", "b"]) if (sides[k].pendingVersion) sides[k].version = sides[k].pendingVersion;
    }
    drawTable();
    const named = ["a", "b"].filter((k) => sides[k].name);
    const gone = named.filter((k) => sides[k].gone);
    if (gone.length && gone.length === named.length) {  // nothing left to watch: the poller stops, says gone
      const error = new Error(sides[gone[0]].gone);
      error.status = sides[gone[0]].goneStatus;
      throw error;
    }
    const running = ["a", "b"].some((k) => sides[k].summary && sides[k].summary.state === "running");
    const goneNote = gone.map((k) => ` · ${sides[k].name} ${sides[k].goneStatus === 404 ? "gone" : "refused"}`).join("");
    Atlas.live(running ? "live" : "idle", (running ? `live · polling every ${boot.poll_s} s` : "nothing running") + goneNote);
  }

  const poller = new Atlas.Poller(refresh, {isLive: () => ["a", "b"].some((k) => sides[k].summary && sides[k].summary.state === "running"),
    gone: "campaigns gone from this storage · stopped checking"});

  for (const key of ["a", "b"]) {
    $(`pick-${key}`).addEventListener("change", (e) => {
      const side = sides[key];
      side.name = e.target.value || null;
      side.version = null;
      side.layout = null;
      side.summary = null;
      side.history = null;
      side.gone = null;
      side.map.reset();
      Atlas.clear(side.root.querySelector(".side-cards"));
      syncUrl();
      syncScaleBox();
      poller.start();  // polling again, if a 404 had stopped it
    });
  }
  $("shared-scale").addEventListener("change", (e) => { wantShared = e.target.checked; drawMaps(); });

  fillPickers().catch(Atlas.showError).finally(() => poller.start());
})();
