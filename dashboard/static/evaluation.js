/* One evaluation in full: result, cell (and that cell's elite), parameters, error, metrics,
 * provenance. Refreshes itself while the evaluation is pending or running. */
"use strict";

(() => {
  const {boot, el, api, num, getJSON} = Atlas;
  const $ = (id) => document.getElementById(id);
  const name = boot.campaign;
  const id = boot.evaluation_id;
  let status = null;

  function render(d) {
    const ev = d.evaluation;
    status = ev.status;
    $("back-link").href = Atlas.campaignUrl(name);
    $("back-link").textContent = `← ${name}`;
    $("eval-title").textContent = `Evaluation ${ev.id}`;
    Atlas.badge($("eval-status"), ev.status);
    $("eval-elite").hidden = !(d.cell && d.cell.is_elite);
    $("eval-subtitle").textContent = `seq ${ev.seq} · proposed by ${ev.proposer} · ${ev.attempts} attempt${ev.attempts === 1 ? "" : "s"}`;
    document.title = `${name} · evaluation ${ev.id} · Entropy Atlas`;

    const result = [[`${d.objective_name} (${d.objective_direction})`, ev.objective === null ? "—" : String(ev.objective)]];
    for (const m of d.measure_names) result.push([m, ev.measures && m in ev.measures ? String(ev.measures[m]) : "—"]);
    for (const [k, v] of Object.entries(ev.measures || {})) if (!d.measure_names.includes(k)) result.push([`${k} (extra)`, v]);
    Atlas.kvRows($("eval-result"), result);

    if (d.cell) {
      const c = d.cell;
      const rows = [["cell", c.cell]];
      if (c.bounds) d.measure_names.forEach((m, j) => rows.push([`${m} range`, `[${num(c.bounds[j][0], 6)}, ${num(c.bounds[j][1], 6)})`]));
      if (c.centroid) rows.push(["centroid", c.centroid.map((v) => num(v, 5)).join(", ")]);
      if (c.is_elite) rows.push(["elite", "this evaluation holds the cell"]);
      else if (c.elite_evaluation_id) {
        rows.push(["elite", el("a", {href: Atlas.evaluationUrl(name, c.elite_evaluation_id),
          text: `evaluation ${c.elite_evaluation_id} (${d.objective_name} ${num(c.elite_objective, 6)})`})]);
      }
      Atlas.kvRows($("eval-cell"), rows);
    } else {
      Atlas.kvRows($("eval-cell"), [["cell", ev.status === "failed" ? "none (failed)" : "not yet placed"]]);
    }

    Atlas.kvRows($("eval-params"), Object.entries(ev.params || {}));
    $("eval-error-panel").hidden = !ev.error;
    $("eval-error").textContent = ev.error || "";
    const metrics = Object.entries(ev.metrics || {});
    Atlas.kvRows($("eval-metrics"), metrics.length ? metrics : [["—", "no metrics"]]);
    const ran = ev.started_at && ev.finished_at ? Atlas.duration(ev.finished_at - ev.started_at) : "—";
    Atlas.kvRows($("eval-provenance"), [
      ["proposer", ev.proposer], ["proposal", ev.proposal ? JSON.stringify(ev.proposal) : "—"],
      ["worker", ev.worker || "—"], ["attempts", ev.attempts], ["created", Atlas.when(ev.created_at)],
      ["started", Atlas.when(ev.started_at)], ["finished", Atlas.when(ev.finished_at)], ["ran for", ran],
      ["result order", ev.finished_seq === null ? "—" : `#${ev.finished_seq}`],
      ["unit-cube point", (ev.x || []).map((v) => num(v, 5)).join(", ")],
    ]);
    const live = ev.status === "pending" || ev.status === "running";
    Atlas.live(live ? "live" : "idle", live ? "waiting for its result" : ev.status);
  }

  async function refresh() {
    render(await getJSON(api(name, `/evaluations/${id}`)));
  }

  // a 404 (its campaign deleted) stops the polling; the error line says which is missing
  new Atlas.Poller(refresh, {isLive: () => status === "pending" || status === "running", slow: 30,
    gone: "gone from this storage · stopped checking"}).start();
})();
