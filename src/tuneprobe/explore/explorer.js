// tuneprobe explorer: the page's script. Data: the JSON in #explorer-data (tuneprobe/explore/page.py).
(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("explorer-data").textContent);
  const N = D.ex.id.length;
  const H = D.held ? D.held.id.length : 0;  // held-out examples: rows N .. N + H - 1
  function ex(r) { return r < N ? { id: D.ex.id[r], s: D.ex.s[r], u: D.ex.u[r], y: D.ex.y[r] }
    : { id: D.held.id[r - N], s: D.held.s[r - N], u: D.held.u[r - N], y: D.held.y[r - N] }; }
  const L = D.labels.length;
  const MAX_LISTED = 300;
  const S = {
    si: D.steps.length - 1, li: D.layers.length - 1, basis: "fixed", colorBy: "label",
    hidden: new Set(), selection: null, tracked: null, node: null, timings: [],
  };

  // ---------------------------------------------------------------- decoding
  function b64bytes(s) {
    const bin = atob(s); const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }
  const cache = {};
  function cellKey() { return D.steps[S.si] + "|" + D.layers[S.li]; }
  function coords(key, basis) {
    const ck = key + "/" + basis;
    if (!cache[ck]) {
      const q = D.cells[key][basis], n = basis.startsWith("held") ? H : N;
      const a = new Int16Array(b64bytes(q.b64)); const span = (q.hi - q.lo) / 65535;
      const x = new Float64Array(n), y = new Float64Array(n);
      for (let i = 0; i < n; i++) { x[i] = q.lo + (a[2 * i] + 32768) * span; y[i] = q.lo + (a[2 * i + 1] + 32768) * span; }
      cache[ck] = { x: x, y: y };
    }
    return cache[ck];
  }
  function clusters(key) {
    const ck = key + "/clusters";
    if (!cache[ck]) cache[ck] = new Int32Array(b64bytes(D.cells[key].clusters));
    return cache[ck];
  }
  function esc(s) { return String(s).replace(/[&<>"]/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c])); }
  function clusterColor(c) { return c < 0 ? "#cccccc" : D.colors[(c * 7) % D.colors.length]; }

  // ---------------------------------------------------------------- layout
  const app = document.getElementById("app");
  app.innerHTML = `
  <header><h1>${esc(D.task)} · ${esc(D.split)} · ${esc(D.model)}${D.tuned_on ? " fine-tuned on " + esc(D.tuned_on) + " (seed " + D.seed + ")" : ""}</h1>
  <div class="controls">
    <label>Snapshot (update) <input type="range" id="step" min="0" max="${D.steps.length - 1}" step="1" value="${S.si}"> <b id="step-label"></b></label>
    <label>Layer <select id="layer">${D.layers.map((l, i) => `<option value="${i}">${l}</option>`).join("")}</select></label>
    <label>Projection <select id="basis"><option value="fixed">PCA, fixed basis across snapshots</option><option value="own">PCA of this snapshot</option></select></label>
    <label>Colour <select id="colorby"><option value="label">gold label</option><option value="cluster">DirectProbe cluster</option></select></label>
    <label>Search <input type="search" id="search" placeholder="a word"></label>
    ${H ? `<label><input type="checkbox" id="held" checked> ${esc(D.held.split)} examples (◇, nearest-hull predictions)</label>` : ""}
    <button id="clear">Clear selection</button>
  </div>
  <div class="note">Showing ${esc(D.rule)}. Mapper: KeplerMapper over the fixed-basis PCA lens, ${D.mapper.n_cubes}×${D.mapper.n_cubes} cubes, overlap ${D.mapper.overlap}, DBSCAN (min_samples ${D.mapper.min_samples}, eps = median ${D.mapper.min_samples}-NN distance × ${D.mapper.eps_scale}).</div>
  </header>
  <main>
    <div class="panel"><h2>Projection <span id="proj-info"></span></h2><div id="proj"></div></div>
    <div class="panel"><h2>Mapper graph <span id="mapper-info"></span></h2><div id="mapper"></div></div>
    <div class="panel"><h2>Label-pair hull distance (this snapshot and layer)</h2><div id="dist"></div></div>
    <div class="panel"><h2>outside_min per label over snapshots (this layer)</h2><div id="omin"></div></div>
    <div class="panel" id="side"><h2>Labels <button id="all">all</button> <button id="none">none</button></h2><div id="legend"></div>
      <h2>Details <span id="details-info"></span></h2><div id="details"><p class="note">Click a point or a Mapper node, or search for a word.</p></div></div>
  </main>`;
  document.getElementById("legend").innerHTML = D.labels.map((l, i) =>
    `<label><input type="checkbox" data-label="${i}" checked><span class="sw" style="background:${D.colors[i]}"></span>${esc(l)}</label>`).join("");
  document.getElementById("layer").value = String(S.li);

  // ---------------------------------------------------------------- views
  const PLOT_CFG = { displaylogo: false, responsive: true };
  const useGL = true;  // WebGL points: a slider step redraws faster than SVG markers
  let projRows = [], heldRows = [];
  function labelName(y) { return y >= 0 ? D.labels[y] : "(unseen label)"; }
  function labelColor(y) { return y >= 0 ? D.colors[y] : "#000000"; }

  function drawProjection(key) {
    const c = coords(key, S.basis), cl = clusters(key);
    projRows = [];
    for (let i = 0; i < N; i++) if (!S.hidden.has(D.ex.y[i])) projRows.push(i);
    const x = projRows.map(i => c.x[i]), y = projRows.map(i => c.y[i]);
    const color = projRows.map(i => S.colorBy === "label" ? D.colors[D.ex.y[i]] : clusterColor(cl[i]));
    const text = projRows.map(i => `${esc(D.ex.id[i])}<br>${esc(D.labels[D.ex.y[i]])} · cluster ${cl[i]}`);
    const showHeld = H && D.cells[key].held_fixed && document.getElementById("held").checked;
    const hc = showHeld ? coords(key, "held_" + S.basis) : null, pred = showHeld ? D.cells[key].held_pred : null;
    heldRows = [];
    if (showHeld) for (let j = 0; j < H; j++) if (!S.hidden.has(D.held.y[j])) heldRows.push(j);
    const at = r => r < N ? [c.x[r], c.y[r]] : (hc ? [hc.x[r - N], hc.y[r - N]] : null);
    const sel = S.selection ? S.selection.rows.filter(r => !S.hidden.has(ex(r).y) && at(r)) : [];
    const cent = D.cells[key][S.basis === "fixed" ? "cent_fixed" : "cent_own"];
    const ci = []; for (let k = 0; k < L; k++) if (!S.hidden.has(k) && cent[k][0] !== null) ci.push(k);
    const traces = [
      { type: useGL ? "scattergl" : "scatter", mode: "markers", x: x, y: y, text: text, hoverinfo: "text", name: "examples",
        marker: { size: 5, color: color, opacity: S.selection ? 0.35 : 0.8 } },
      { type: "scatter", mode: "markers", x: ci.map(k => cent[k][0]), y: ci.map(k => cent[k][1]), name: "label centroids",
        text: ci.map(k => "centroid of " + esc(D.labels[k])), hoverinfo: "text",
        marker: { symbol: "x", size: 12, color: ci.map(k => D.colors[k]), line: { width: 2, color: "#000" } } },
      { type: useGL ? "scattergl" : "scatter", mode: "markers", x: heldRows.map(j => hc.x[j]), y: heldRows.map(j => hc.y[j]),
        name: "held-out", hoverinfo: "text",
        text: heldRows.map(j => `${esc(D.held.id[j])} (${esc(D.held.split)})<br>gold ${esc(labelName(D.held.y[j]))} · nearest hull ${esc(labelName(pred[j]))}`),
        marker: { symbol: "diamond-open", size: 7, color: heldRows.map(j => labelColor(D.held.y[j])), opacity: S.selection ? 0.35 : 0.9 } },
      { type: useGL ? "scattergl" : "scatter", mode: "markers", x: sel.map(r => at(r)[0]), y: sel.map(r => at(r)[1]), name: "selected",
        hoverinfo: "skip", marker: { size: 9, color: "rgba(0,0,0,0)", line: { width: 2, color: "#000" } } },
    ];
    const layout = { margin: { l: 40, r: 10, t: 10, b: 30 }, showlegend: false, uirevision: S.basis + S.li, hovermode: "closest",
      xaxis: { zeroline: false }, yaxis: { zeroline: false } };
    Plotly.react("proj", traces, layout, PLOT_CFG);
    const cell = D.cells[key];
    document.getElementById("proj-info").textContent = `(${cell.n_clusters} DirectProbe clusters${cell.is_linear ? ", linearly separable" : ""})`;
  }

  function drawMapper(key) {
    const cell = D.cells[key], c = coords(key, "fixed");
    const div = document.getElementById("mapper");
    const W = div.clientWidth || 500, H = div.clientHeight || 400, pad = 24;
    const pos = cell.nodes.map(m => {
      let sx = 0, sy = 0; for (const i of m) { sx += c.x[i]; sy += c.y[i]; } return [sx / m.length, sy / m.length];
    });
    let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
    for (const p of pos) { x0 = Math.min(x0, p[0]); x1 = Math.max(x1, p[0]); y0 = Math.min(y0, p[1]); y1 = Math.max(y1, p[1]); }
    const sx = v => pad + (x1 > x0 ? (v - x0) / (x1 - x0) : 0.5) * (W - 2 * pad);
    const sy = v => H - pad - (y1 > y0 ? (v - y0) / (y1 - y0) : 0.5) * (H - 2 * pad);
    const maxSize = Math.max(1, ...cell.nodes.map(m => m.length));
    const tracked = S.tracked ? new Set(S.tracked) : null;
    let svg = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}">`;
    for (const [a, b] of cell.links) {
      svg += `<line x1="${sx(pos[a][0])}" y1="${sy(pos[a][1])}" x2="${sx(pos[b][0])}" y2="${sy(pos[b][1])}" stroke="#999" stroke-width="1"/>`;
    }
    cell.nodes.forEach((m, n) => {
      const counts = new Array(L).fill(0); for (const i of m) counts[D.ex.y[i]]++;
      const shown = counts.reduce((s, v, k) => s + (S.hidden.has(k) ? 0 : v), 0);
      let hit = 0; if (tracked) for (const i of m) if (tracked.has(i)) hit++;
      const op = tracked ? (hit ? 1 : 0.2) : (shown ? 1 : 0.15);
      const r = 4 + 12 * Math.sqrt(m.length / maxSize), cx = sx(pos[n][0]), cy = sy(pos[n][1]);
      svg += `<g class="node" data-node="${n}" opacity="${op}"><title>node ${n}: ${m.length} examples${tracked ? ", " + hit + " tracked" : ""}</title>`;
      let a0 = -Math.PI / 2; const tot = m.length;
      counts.forEach((v, k) => {
        if (!v) return;
        const col = S.hidden.has(k) ? "#eeeeee" : D.colors[k];
        if (v === tot) { svg += `<circle cx="${cx}" cy="${cy}" r="${r}" fill="${col}"/>`; return; }
        const a1 = a0 + 2 * Math.PI * v / tot, large = a1 - a0 > Math.PI ? 1 : 0;
        svg += `<path d="M${cx},${cy} L${cx + r * Math.cos(a0)},${cy + r * Math.sin(a0)} A${r},${r} 0 ${large} 1 ${cx + r * Math.cos(a1)},${cy + r * Math.sin(a1)} Z" fill="${col}"/>`;
        a0 = a1;
      });
      const ring = S.node === n ? 3 : (tracked && hit ? 2 : 0.5);
      svg += `<circle class="ring" cx="${cx}" cy="${cy}" r="${r}" fill="none" stroke="#000" stroke-width="${ring}"/></g>`;
    });
    svg += "</svg>";
    div.innerHTML = svg;
    document.getElementById("mapper-info").textContent = `(${cell.nodes.length} nodes, ${cell.links.length} edges${tracked ? "; tracking " + tracked.size + " examples" : ""})`;
  }

  let ominFor = null;
  function drawDistances(key) {
    const cell = D.cells[key];
    const keep = []; for (let k = 0; k < L; k++) if (!S.hidden.has(k)) keep.push(k);
    const names = keep.map(k => D.labels[k]);
    const z = keep.map(a => keep.map(b => cell.dist[a][b]));
    Plotly.react("dist", [{ type: "heatmap", z: z, x: names, y: names, colorscale: "Viridis", hoverongaps: false,
      hovertemplate: "%{y} – %{x}: %{z}<extra></extra>" }],
    { margin: { l: 80, r: 10, t: 10, b: 80 }, yaxis: { autorange: "reversed" } }, PLOT_CFG);
    const layer = D.layers[S.li];
    const marker = [{ type: "line", x0: D.steps[S.si], x1: D.steps[S.si], yref: "paper", y0: 0, y1: 1, line: { dash: "dot", color: "#000" } }];
    const what = layer + "/" + keep.join(",");
    if (ominFor === what) { Plotly.relayout("omin", { shapes: marker }); return; }  // same lines: move the marker only
    ominFor = what;
    const traces = keep.map(k => ({ type: "scatter", mode: "lines+markers", name: D.labels[k], line: { color: D.colors[k] },
      x: D.steps, y: D.steps.map(s => { const c = D.cells[s + "|" + layer]; return c ? c.outside_min[k] : null; }) }));
    Plotly.react("omin", traces, { margin: { l: 50, r: 10, t: 10, b: 40 }, showlegend: false,
      xaxis: { title: { text: "fine-tuning update" } }, yaxis: { title: { text: "outside_min" } }, shapes: marker }, PLOT_CFG);
  }

  function drawDetails() {
    const box = document.getElementById("details"), info = document.getElementById("details-info");
    if (!S.selection) { info.textContent = ""; return; }
    const key = cellKey(), cl = clusters(key);
    const rows = S.selection.rows;
    info.textContent = `${S.selection.what}: ${rows.length} example${rows.length === 1 ? "" : "s"}` + (rows.length > MAX_LISTED ? ` (first ${MAX_LISTED})` : "");
    const pred = D.cells[key].held_pred;
    box.innerHTML = rows.slice(0, MAX_LISTED).map(r => {
      const e = ex(r), words = D.sentences[e.s], unit = new Set(e.u);
      const sent = words.map((w, k) => unit.has(k) ? `<mark>${esc(w)}</mark>` : esc(w)).join(" ");
      let how;
      if (r < N) {
        const c = cl[r];
        how = c >= 0 ? `DirectProbe cluster ${c} · nearest hull: its own cluster (<span class="pred">${esc(labelName(e.y))}</span>)` : "dropped by the fit";
      } else {
        const p = pred ? pred[r - N] : null;
        how = `${esc(D.held.split)} example · ` + (p === null ? "no prediction at this snapshot and layer"
          : `nearest hull: <span class="pred">${esc(labelName(p))}</span> ${p === e.y ? "✓" : "✗"}`);
      }
      return `<div class="ex" data-id="${esc(e.id)}"><div>${sent}</div><div class="meta"><span class="sw" style="background:${labelColor(e.y)}"></span>gold <b class="gold">${esc(labelName(e.y))}</b> · ${how} · ${esc(e.id)}</div></div>`;
    }).join("");
  }

  function render() {
    const t0 = performance.now();
    const key = cellKey();
    document.getElementById("step-label").textContent = `${D.steps[S.si]} (${S.si + 1}/${D.steps.length})`;
    const t = { step: D.steps[S.si], layer: D.layers[S.li] };
    let t1 = performance.now();
    for (const [name, draw] of [["projection", drawProjection], ["mapper", drawMapper], ["distances", drawDistances], ["details", drawDetails]]) {
      draw(key); const t2 = performance.now(); t[name] = t2 - t1; t1 = t2;
    }
    t.total = performance.now() - t0;
    S.timings.push(t);
  }

  // ---------------------------------------------------------------- events
  function select(what, rows, node) {
    S.selection = rows ? { what: what, rows: rows } : null; S.node = node === undefined ? null : node;
    S.tracked = node === undefined || node === null ? null : rows.slice();
    render();
  }
  document.getElementById("step").addEventListener("input", e => { S.si = +e.target.value; S.node = null; render(); });
  document.getElementById("layer").addEventListener("change", e => { S.li = +e.target.value; S.node = null; S.tracked = null; render(); });
  document.getElementById("basis").addEventListener("change", e => { S.basis = e.target.value; render(); });
  document.getElementById("colorby").addEventListener("change", e => { S.colorBy = e.target.value; render(); });
  document.getElementById("clear").addEventListener("click", () => select(null, null));
  if (H) document.getElementById("held").addEventListener("change", () => render());
  document.getElementById("legend").addEventListener("change", e => {
    const k = +e.target.dataset.label; if (e.target.checked) S.hidden.delete(k); else S.hidden.add(k); render();
  });
  function setAll(on) {
    document.querySelectorAll("#legend input").forEach(b => { b.checked = on; });
    S.hidden = on ? new Set() : new Set(D.labels.map((_, k) => k)); render();
  }
  document.getElementById("all").addEventListener("click", () => setAll(true));
  document.getElementById("none").addEventListener("click", () => setAll(false));
  document.getElementById("search").addEventListener("change", e => {
    const q = e.target.value.trim().toLowerCase();
    if (!q) { select(null, null); return; }
    const rows = [];
    for (let r = 0; r < N + H; r++) if (D.sentences[ex(r).s].some(w => w.toLowerCase() === q)) rows.push(r);
    select(`search "${q}"`, rows);
  });
  document.getElementById("mapper").addEventListener("click", e => {
    const g = e.target.closest(".node"); if (!g) return;
    const n = +g.dataset.node, key = cellKey();
    select(`Mapper node ${n} (update ${D.steps[S.si]}, layer ${D.layers[S.li]})`, D.cells[key].nodes[n].slice(), n);
  });
  render();
  document.getElementById("proj").on("plotly_click", ev => {
    const p = ev.points.find(q => q.curveNumber === 0 || q.curveNumber === 2); if (!p) return;
    const r = p.curveNumber === 0 ? projRows[p.pointNumber] : N + heldRows[p.pointNumber];
    select(`point ${ex(r).id}`, [r]);
  });
  window.tuneprobeExplorer = { state: S, data: D, render: render, rows: () => projRows, heldRows: () => heldRows };
})();
