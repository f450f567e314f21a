/* Campaigns: status and progress of each, updated by polling; tick two to compare them. */
"use strict";

(() => {
  const {el, clear, int, num, pct, getJSON} = Atlas;
  const $ = (id) => document.getElementById(id);
  const ticked = new Set();
  let campaigns = [];

  function updateCompare() {
    const button = $("compare-button");
    button.disabled = ticked.size !== 2;
    button.textContent = ticked.size === 2 ? `Compare ${[...ticked].join(" and ")}` : "Tick two campaigns to compare them";
  }

  function row(c) {
    const s = c.stats;
    const waiting = Atlas.unfinished(c.state, s.counts);  // in flight, or pending where no run holds it
    const box = el("input", {type: "checkbox", "aria-label": `compare ${c.name}`, checked: ticked.has(c.name),
      onchange: (e) => { if (e.target.checked) ticked.add(c.name); else ticked.delete(c.name); updateCompare(); }});
    const bar = el("div", {class: "progress small"}, el("div", {class: "progress-bar", style: `width:${(100 * c.progress).toFixed(2)}%`}));
    const best = s.best_evaluation_id
      ? el("a", {href: Atlas.evaluationUrl(c.name, s.best_evaluation_id), text: num(s.best_objective, 5)}) : "—";
    return el("tr", {dataset: {campaign: c.name}},
      el("td", {class: "pick"}, box),
      el("td", {}, el("a", {href: Atlas.campaignUrl(c.name), text: c.name})),
      el("td", {text: c.algorithm}),
      el("td", {}, Atlas.badge(el("span"), c.state)),
      el("td", {}, bar, el("span", {class: "muted", text: `${int(s.finished)} / ${int(c.budget)}`})),
      el("td", {class: "num", text: int(s.counts.failed)}),
      el("td", {class: "num", text: waiting.live || !waiting.n ? int(waiting.n) : waiting.text,
        title: waiting.live ? null : "no run holds this campaign: `atlas resume` runs its pending evaluations"}),
      el("td", {class: "num", text: `${pct(s.coverage)} (${int(s.elites)}/${int(s.cells)})`}),
      el("td", {class: "num", text: num(s.qd_score, 6)}),
      el("td", {class: "num"}, best),
      el("td", {class: "num muted", text: Atlas.ago(c.updated_at)}));
  }

  async function refresh() {
    const data = await getJSON("/api/campaigns");
    campaigns = data.campaigns;
    for (const name of [...ticked]) if (!campaigns.some((c) => c.name === name)) ticked.delete(name);
    clear(document.querySelector("#campaign-table tbody"), campaigns.map(row));
    $("campaign-empty").hidden = campaigns.length > 0;
    const running = campaigns.filter((c) => c.state === "running").length;
    $("index-caption").textContent = `${campaigns.length} campaign${campaigns.length === 1 ? "" : "s"}` +
      (running ? ` · ${running} running` : "");
    Atlas.live(running ? "live" : "idle", running ? `live · polling every ${Atlas.boot.poll_s} s` : "nothing running");
    updateCompare();
  }

  $("compare-button").addEventListener("click", () => {
    const [a, b] = [...ticked];
    window.location.href = `/compare?a=${encodeURIComponent(a)}&b=${encodeURIComponent(b)}`;
  });

  new Atlas.Poller(refresh, {isLive: () => campaigns.some((c) => c.state === "running")}).start();
})();
