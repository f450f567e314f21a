/* The elite map: a heatmap for grid archives, a Voronoi plot for CVT archives.
 *
 * Grid: cell c of dims (d0, d1, …) sits at the row-major (C order) multi-index of c, as
 * ribs and the archive number it. With more than two measures the map shows two of them
 * (chosen by the user) and each pixel holds the best elite along the others.
 * Hovering shows a tooltip built for that one elite on demand, so a map of 10,000 elites
 * costs nothing per elite before it is drawn.
 * CVT in 2-D: the server sends a raster of which cell each pixel belongs to (its nearest
 * centroid), so the heatmap of that raster *is* the Voronoi diagram; otherwise the
 * elites are drawn at their centroids. Hover shows an elite; click reports it.
 */
"use strict";

class EliteMap {
  /**
   * @param {HTMLElement} node where to draw
   * @param {{onHover?: Function, onClick?: Function, compact?: boolean}} options
   *   onHover(i) / onClick(i) get the index of an elite in the elites payload.
   */
  constructor(node, options = {}) {
    this.node = node;
    this.options = options;
    this.layout = null;
    this.elites = null;
    this.ix = 0;
    this.iy = 1;
    this.range = null;
    this.draws = 0;
    this.bound = false;
  }

  /**
   * Elites from `/elites?since=…` merged into the elites held (by cell: an elite is only ever
   * replaced, never removed). Returns null when the result does not add up (the caller then
   * fetches the whole map).
   */
  static merge(base, delta) {
    if (delta.complete) return delta;
    if (!base) return null;
    const out = {...delta, cell: base.cell.slice(), evaluation_id: base.evaluation_id.slice(),
      objective: base.objective.slice(), proposer: base.proposer.slice(), seq: base.seq.slice(), measures: {}, params: {}};
    for (const m of delta.measure_names) out.measures[m] = (base.measures[m] || []).slice();
    const names = [...new Set([...base.param_names, ...delta.param_names])];
    out.param_names = names;
    for (const p of names) out.params[p] = base.params[p] ? base.params[p].slice() : new Array(base.cell.length).fill(null);
    const where = new Map(out.cell.map((c, i) => [c, i]));
    for (let j = 0; j < delta.cell.length; j++) {
      let i = where.get(delta.cell[j]);
      if (i === undefined) {
        i = out.cell.length;
        where.set(delta.cell[j], i);
      }
      out.cell[i] = delta.cell[j];
      out.evaluation_id[i] = delta.evaluation_id[j];
      out.objective[i] = delta.objective[j];
      out.proposer[i] = delta.proposer[j];
      out.seq[i] = delta.seq[j];
      for (const m of delta.measure_names) out.measures[m][i] = delta.measures[m][j];
      for (const p of names) out.params[p][i] = delta.params[p] ? delta.params[p][j] : null;
    }
    return out.cell.length === delta.count ? out : null;
  }

  /**
   * New data: the layout (from /layout), the elites (from /elites), the objective's name and
   * direction, and the units of the objective and measures (the summary's `units`: name -> unit).
   */
  setData({layout, elites, objective, direction, campaign, units}) {
    const first = this.layout === null;
    this.layout = layout;
    this.elites = elites;
    this.objective = objective;
    this.units = units || {};
    this.sign = direction === "minimize" ? -1 : 1;
    this.campaign = campaign;
    if (first && layout.axes.length < 2) this.iy = 0;
    this.elites.count = this.elites.cell.length;
  }

  /** Forget the data and the figure (another campaign will be drawn here). */
  reset() {
    this._hideTip();
    Plotly.purge(this.node);
    this.layout = null;
    this.elites = null;
    this.ix = 0;
    this.iy = 1;
    this.range = null;
    this.draws = 0;
    this.bound = false;
    for (const key of ["filledCells", "elites", "kind", "draws"]) delete this.node.dataset[key];
  }

  /** Show measures ix and iy (when there are more than two). */
  setAxes(ix, iy) {
    this.ix = ix;
    this.iy = iy;
  }

  /** A fixed colour range [min, max] (two maps on one scale), or null for each map's own. */
  setRange(range) {
    this.range = range;
  }

  /** The elites' objective range. */
  valueRange() {
    const values = (this.elites ? this.elites.objective : []).filter((v) => v !== null);
    if (!values.length) return null;
    return [Math.min(...values), Math.max(...values)];
  }

  /** Axis pickers for maps of more than two measures (nothing otherwise). */
  controls(container) {
    if (!this.layout || this.layout.axes.length <= 2 || container.dataset.built) return;
    container.dataset.built = "1";
    const names = this.layout.axes.map((a) => a.name);
    const make = (label, current, onChange) => {
      const select = Atlas.el("select", {onchange: (e) => onChange(Number(e.target.value))},
        names.map((n, i) => Atlas.el("option", {value: i, text: n, selected: i === current})));
      return Atlas.el("label", {class: "control"}, label, select);
    };
    container.append(
      make("x", this.ix, (v) => { this.ix = v; if (this.iy === v) this.iy = (v + 1) % names.length; this._resync(container); this.draw(); }),
      make("y", this.iy, (v) => { this.iy = v; if (this.ix === v) this.ix = (v + 1) % names.length; this._resync(container); this.draw(); }),
      Atlas.el("span", {class: "muted", text: "other measures: best elite shown"}),
    );
  }

  _resync(container) {
    const selects = container.querySelectorAll("select");
    if (selects.length >= 2) { selects[0].value = String(this.ix); selects[1].value = String(this.iy); }
  }

  /** The lines of an elite's tooltip: [label, value] pairs (text, never parsed as HTML). */
  describe(i) {
    const e = this.elites;
    const {num, short} = Atlas;
    const lines = [[`cell ${e.cell[i]}`, `evaluation ${e.evaluation_id[i]}`], [this.objective, num(e.objective[i], 6)]];
    for (const m of e.measure_names) lines.push([m, num(e.measures[m][i])]);
    const params = e.param_names.filter((p) => e.params[p][i] !== null && e.params[p][i] !== undefined);
    for (const p of params.slice(0, 14)) lines.push([p, short(e.params[p][i])]);
    if (params.length > 14) lines.push(["…", `${params.length - 14} more parameters`]);
    lines.push(["proposer", e.proposer[i]]);
    return lines;
  }

  /** The tooltip next to the pointer (built on hover: nothing is prepared per elite up front). */
  _showTip(i, event) {
    if (!this.tip) {
      this.tip = Atlas.el("div", {class: "map-tip", role: "tooltip"});
      document.body.append(this.tip);
    }
    const rows = this.describe(i).map(([k, v], n) => Atlas.el("div", {class: n ? "" : "tip-head"},
      Atlas.el("span", {class: "tip-key", text: k}), " ", Atlas.el("span", {text: v})));
    const extra = this.many && this.pixel ? this.many[this.pixel[0]][this.pixel[1]] : 0;
    if (extra > 1) rows.push(Atlas.el("div", {class: "tip-note", text: `best of ${extra} elites along the other measures`}));
    Atlas.clear(this.tip, rows);
    this.tip.hidden = false;
    const x = event && event.clientX !== undefined ? event.clientX : 0;
    const y = event && event.clientY !== undefined ? event.clientY : 0;
    const box = this.tip.getBoundingClientRect();
    const left = x + 16 + box.width > window.innerWidth ? x - 16 - box.width : x + 16;
    const top = Math.min(Math.max(8, y - box.height / 2), window.innerHeight - box.height - 8);
    this.tip.style.left = `${Math.max(8, left)}px`;
    this.tip.style.top = `${top}px`;
  }

  _hideTip() {
    if (this.tip) this.tip.hidden = true;
  }

  _unravel(cell, dims) {
    const idx = new Array(dims.length);
    for (let d = dims.length - 1; d >= 0; d--) {
      idx[d] = cell % dims[d];
      cell = Math.floor(cell / dims[d]);
    }
    return idx;
  }

  _centres(axis) {
    const w = (axis.high - axis.low) / axis.bins;
    return Array.from({length: axis.bins}, (_, j) => axis.low + (j + 0.5) * w);
  }

  _colour() {
    const direction = this.sign > 0 ? "higher" : "lower";
    const objectiveTitle = Atlas.plotText(Atlas.withUnit(this.objective, this.units));
    const out = {colorscale: "Viridis", reversescale: this.sign < 0,
      colorbar: {title: {text: `${objectiveTitle}<br>(${direction} is better)`, side: "right"}, thickness: 14, len: 0.9}};
    if (this.range) { out.zmin = this.range[0]; out.zmax = this.range[1]; out.zauto = false; }
    return out;
  }

  /** Grid: one pixel per cell of the two axes shown, the best elite along the others. */
  _grid() {
    const {axes} = this.layout;
    const e = this.elites;
    const dims = axes.map((a) => a.bins);
    const twoD = axes.length >= 2;
    const ax = axes[this.ix];
    const ay = twoD ? axes[this.iy] : null;
    const nx = ax.bins;
    const ny = twoD ? ay.bins : 1;
    const z = Array.from({length: ny}, () => new Array(nx).fill(null));
    const who = Array.from({length: ny}, () => new Array(nx).fill(null));
    const many = axes.length > 2 ? Array.from({length: ny}, () => new Array(nx).fill(0)) : null;
    for (let i = 0; i < e.count; i++) {
      const v = e.objective[i];
      if (v === null) continue;
      const idx = this._unravel(e.cell[i], dims);
      const c = idx[this.ix];
      const r = twoD ? idx[this.iy] : 0;
      if (c >= nx || r >= ny) continue;
      if (many) many[r][c] += 1;
      const held = who[r][c];
      if (held === null || this.sign * v > this.sign * e.objective[held]) {
        who[r][c] = i;
        z[r][c] = v;
      }
    }
    let filled = 0;
    for (const row of who) for (const i of row) if (i !== null) filled += 1;
    this.many = many;
    const small = nx * ny <= 2500;
    const trace = {
      type: "heatmap", x: this._centres(ax), y: twoD ? this._centres(ay) : [""], z, customdata: who,
      hoverinfo: "none", hoverongaps: false, xgap: small ? 1 : 0, ygap: small ? 1 : 0, ...this._colour(),
    };
    const xTitle = Atlas.plotText(Atlas.withUnit(ax.name, this.units));
    const yTitle = Atlas.plotText(twoD ? Atlas.withUnit(ay.name, this.units) : "");
    const layout = {
      xaxis: {title: {text: xTitle}, range: [ax.low, ax.high], showgrid: false},
      yaxis: twoD ? {title: {text: yTitle}, range: [ay.low, ay.high], showgrid: false}
        : {showticklabels: false, showgrid: false},
    };
    return {traces: [trace], layout, filled};
  }

  /** CVT in 2-D: the Voronoi raster coloured by each cell's elite, centroids on top. */
  _voronoi() {
    const {axes, voronoi, centroids} = this.layout;
    const e = this.elites;
    const byCell = new Map();
    for (let i = 0; i < e.count; i++) if (e.objective[i] !== null) byCell.set(e.cell[i], i);
    const z = voronoi.cell.map((row) => row.map((c) => (byCell.has(c) ? e.objective[byCell.get(c)] : null)));
    const who = voronoi.cell.map((row) => row.map((c) => (byCell.has(c) ? byCell.get(c) : null)));
    this.many = null;
    const heat = {type: "heatmap", x: voronoi.x, y: voronoi.y, z, customdata: who, hoverinfo: "none",
      hoverongaps: false, ...this._colour()};
    const dots = {type: "scatter", mode: "markers", x: centroids.map((c) => c[0]), y: centroids.map((c) => c[1]),
      marker: {size: centroids.length > 2000 ? 2 : 3, color: "rgba(30,35,48,0.35)"}, hoverinfo: "skip", showlegend: false};
    const [ax, ay] = axes;
    const xTitle = Atlas.plotText(Atlas.withUnit(ax.name, this.units));
    const yTitle = Atlas.plotText(Atlas.withUnit(ay.name, this.units));
    return {
      traces: [heat, dots], filled: byCell.size,
      layout: {xaxis: {title: {text: xTitle}, range: [ax.low, ax.high], showgrid: false},
        yaxis: {title: {text: yTitle}, range: [ay.low, ay.high], showgrid: false}},
    };
  }

  /** CVT in 1-D or beyond 2-D: elites at their centroids (projected on the axes shown). */
  _centroidScatter() {
    const {axes, centroids} = this.layout;
    const e = this.elites;
    const twoD = axes.length >= 2;
    const filledCells = new Set();
    const xs = [], ys = [], cs = [], ids = [];
    this.many = null;
    for (let i = 0; i < e.count; i++) {
      if (e.objective[i] === null || !centroids[e.cell[i]]) continue;
      filledCells.add(e.cell[i]);
      const c = centroids[e.cell[i]];
      xs.push(c[this.ix]);
      ys.push(twoD ? c[this.iy] : e.objective[i]);
      cs.push(e.objective[i]);
      ids.push(i);
    }
    const empty = centroids.filter((_, cell) => !filledCells.has(cell));
    const colour = this._colour();
    const ax = axes[this.ix];
    const ay = twoD ? axes[this.iy] : null;
    const xTitle = Atlas.plotText(Atlas.withUnit(ax.name, this.units));
    // in 1-D the objective is the y axis
    const yTitle = Atlas.plotText(Atlas.withUnit(twoD ? ay.name : this.objective, this.units));
    const size = centroids.length > 2000 ? 4 : centroids.length > 300 ? 7 : 11;
    const traces = [
      {type: "scatter", mode: "markers", x: empty.map((c) => c[this.ix]), y: empty.map((c) => (twoD ? c[this.iy] : null)),
        marker: {size: size * 0.6, color: "#d5d9e0"}, hoverinfo: "skip", showlegend: false, visible: twoD},
      {type: "scatter", mode: "markers", x: xs, y: ys, customdata: ids, hoverinfo: "none", showlegend: false,
        marker: {size, color: cs, colorscale: colour.colorscale, reversescale: colour.reversescale,
          cmin: colour.zmin, cmax: colour.zmax, showscale: true, colorbar: colour.colorbar, line: {width: 0}}},
    ];
    return {
      traces, filled: filledCells.size,
      layout: {xaxis: {title: {text: xTitle}, range: [ax.low, ax.high]},
        yaxis: twoD ? {title: {text: yTitle}, range: [ay.low, ay.high]} : {title: {text: yTitle}}},
    };
  }

  /** Draw (or update in place, keeping the zoom). */
  async draw() {
    if (!this.layout || !this.elites) return;
    const {kind, axes} = this.layout;
    let figure;
    if (kind === "grid") figure = this._grid();
    else if (axes.length === 2 && this.layout.voronoi) figure = this._voronoi();
    else figure = this._centroidScatter();
    const layout = {
      ...figure.layout, margin: {l: 60, r: 10, t: 10, b: 50}, hovermode: "closest",
      uirevision: `${this.campaign}:${this.ix}:${this.iy}`,
    };
    if (this.elites.count === 0) {
      layout.annotations = [{text: "no elites yet", showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5,
        font: {color: "#667085", size: 14}}];
    }
    this._hideTip();
    await Atlas.plot(this.node, figure.traces, layout, {displayModeBar: true});
    if (!this.bound) {
      this.bound = true;
      this.node.on("plotly_hover", (ev) => {
        const i = this._index(ev);
        if (i === null) { this._hideTip(); return; }
        const p = ev.points[0].pointIndex;
        this.pixel = Array.isArray(p) ? p : null;
        this._showTip(i, ev.event);
        if (this.options.onHover) this.options.onHover(i, ev);
      });
      this.node.on("plotly_unhover", () => this._hideTip());
      this.node.on("plotly_click", (ev) => {
        const i = this._index(ev);
        if (i !== null && this.options.onClick) this.options.onClick(i, ev);
      });
      this.node.addEventListener("mouseleave", () => this._hideTip());
    }
    this.draws += 1;
    this.node.dataset.filledCells = String(figure.filled);
    this.node.dataset.elites = String(this.elites.count);
    this.node.dataset.kind = kind;
    this.node.dataset.draws = String(this.draws);
    if (this.draws === 1) {
      try { performance.mark("atlas:map-drawn"); } catch (_) { /* very old browsers */ }
    }
    return figure.filled;
  }

  /** The elite under a plotly event's point, or null. */
  _index(event) {
    if (!event || !event.points || !event.points.length) return null;
    const index = event.points[0].customdata;
    return index === null || index === undefined || index === "" ? null : Number(index);
  }
}
