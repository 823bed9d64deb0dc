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
    <label>Projection <select id="basis"><option value="fixed">PCA, fixed basis across snapshots</option><option value="own">PCA of this snapshot</option>${D.cells[D.steps[0] + "|" + D.layers[0]].umap ? '<option value="umap">UMAP (PCA-initialised)</option>' : ""}</select></label>
    <label>Colour <select id="colorby"><option value="label">gold label</option><option value="cluster">DirectProbe cluster</option></select></label>
    <label>Search <input type="search" id="search" placeholder="a word"></label>
    ${H ? `<label><input type="checkbox" id="held" checked> ${esc(D.held.split)} examples (◇, nearest-hull predictions)</label>` : ""}
    <button id="clear">Clear selection</button>
  </div>
  <div class="note">Showing ${esc(D.rule)}. Mapper: KeplerMapper over the fixed-basis PCA lens, ${D.mapper.n_cubes}×${D.mapper.n_cubes} cubes, overlap ${D.mapper.overlap}, DBSCAN (min_samples ${D.mapper.min_samples}, eps = median ${D.mapper.min_samples}-NN distance × ${D.mapper.eps_scale}). ${esc(D.umap_note || "")}</div>
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
  let projRows = [], heldRows = [];
  function labelName(y) { return y >= 0 ? D.labels[y] : "(unseen label)"; }
  function labelColor(y) { return y >= 0 ? D.colors[y] : "#000000"; }

  // Per-step work is kept small: decoded coordinates, colours and hover texts are cached (the same array
  // objects are handed to plotly again), x/y are typed-array gathers, and the axis ranges are fixed per layer
  // in the fixed basis and for UMAP (over every snapshot) so that a step changes only the points, not the axes.
  let memo = {}, memoHidden = "";
  function remember(k, make) { if (!(k in memo)) memo[k] = make(); return memo[k]; }
  function hiddenKey() {  // the label filter's state; a new one drops the cached per-filter arrays
    const hk = Array.from(S.hidden).sort((a, b) => a - b).join(",");
    if (hk !== memoHidden) { memoHidden = hk; memo = Object.fromEntries(Object.entries(memo).filter(([k]) => k.startsWith("range/"))); }
    return hk;
  }
  function gather(src, rows) { const out = new Float64Array(rows.length); for (let i = 0; i < rows.length; i++) out[i] = src[rows[i]]; return out; }
  function visibleRows(ys, n) { const out = []; for (let i = 0; i < n; i++) if (!S.hidden.has(ys[i])) out.push(i); return Int32Array.from(out); }
  function axisRanges(key) {
    const layer = D.layers[S.li];
    const keys = S.basis !== "own" ? D.steps.map(s => s + "|" + layer).filter(k => D.cells[k]) : [key];
    return remember("range/" + S.basis + "/" + keys.join(";"), () => {
      let x0 = Infinity, x1 = -Infinity, y0 = Infinity, y1 = -Infinity;
      const add = (x, y) => { if (x === null || y === null) return; x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); };
      for (const k of keys) {
        const parts = [coords(k, S.basis)]; if (H && D.cells[k]["held_" + S.basis]) parts.push(coords(k, "held_" + S.basis));
        for (const c of parts) for (let i = 0; i < c.x.length; i++) add(c.x[i], c.y[i]);
        for (const p of D.cells[k]["cent_" + S.basis]) add(p[0], p[1]);
      }
      const px = 0.04 * ((x1 - x0) || 1), py = 0.04 * ((y1 - y0) || 1);
      return { x: [x0 - px, x1 + px], y: [y0 - py, y1 + py] };
    });
  }

  // The points are drawn on a canvas over plotly's plot area: plotly draws the axes (fixed ranges; zoom, pan
  // and double-click reset stay plotly's) and is called again only when the ranges change (layer, basis). A
  // plotly replot of ~5,000 WebGL points cost most of a slider step at ps-role size.
  const MARGIN = { l: 40, r: 10, t: 10, b: 30 };
  let projView = null;  // what the canvas shows: positions of the shown points, centroids, selection
  let projAxes = null;
  function plotArea() {
    const gd = document.getElementById("proj"), lay = gd.layout || {};
    const W = gd.clientWidth, Hh = gd.clientHeight;
    const xr = lay.xaxis && lay.xaxis.range, yr = lay.yaxis && lay.yaxis.range;
    return { l: MARGIN.l, t: MARGIN.t, w: W - MARGIN.l - MARGIN.r, h: Hh - MARGIN.t - MARGIN.b, W: W, H: Hh, xr: xr, yr: yr };
  }
  function toPixel(x, y) {  // data -> CSS pixels relative to the #proj div
    const a = plotArea();
    return [a.l + (x - a.xr[0]) / (a.xr[1] - a.xr[0]) * a.w, a.t + (1 - (y - a.yr[0]) / (a.yr[1] - a.yr[0])) * a.h];
  }
  function paintProjection() {
    const gd = document.getElementById("proj"), v = projView; if (!v || !gd.layout) return;
    let cv = gd.parentNode.querySelector("canvas.points");
    if (!cv) { cv = document.createElement("canvas"); cv.className = "points"; gd.parentNode.insertBefore(cv, gd.nextSibling); }
    const a = plotArea(), dpr = window.devicePixelRatio || 1;
    cv.style.left = (gd.offsetLeft + a.l) + "px"; cv.style.top = (gd.offsetTop + a.t) + "px";
    cv.style.width = a.w + "px"; cv.style.height = a.h + "px";
    if (cv.width !== Math.round(a.w * dpr) || cv.height !== Math.round(a.h * dpr)) { cv.width = Math.round(a.w * dpr); cv.height = Math.round(a.h * dpr); }
    const ctx = cv.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, a.w, a.h);
    const sx = a.w / (a.xr[1] - a.xr[0]), sy = a.h / (a.yr[1] - a.yr[0]), x0 = a.xr[0], y1 = a.yr[1];
    const byColor = (n, colorOf) => { const g = new Map(); for (let i = 0; i < n; i++) { const c = colorOf(i); if (!g.has(c)) g.set(c, []); g.get(c).push(i); } return g; };
    ctx.globalAlpha = S.selection ? 0.35 : 0.8;
    for (const [col, idx] of byColor(v.x.length, i => v.color[i])) {
      ctx.fillStyle = col; ctx.beginPath();
      for (const i of idx) { const px = (v.x[i] - x0) * sx, py = (y1 - v.y[i]) * sy; ctx.moveTo(px + 2.5, py); ctx.arc(px, py, 2.5, 0, 2 * Math.PI); }
      ctx.fill();
    }
    ctx.globalAlpha = S.selection ? 0.35 : 0.9; ctx.lineWidth = 1;
    for (const [col, idx] of byColor(v.hx.length, j => v.hcolor[j])) {
      ctx.strokeStyle = col; ctx.beginPath();
      for (const j of idx) { const px = (v.hx[j] - x0) * sx, py = (y1 - v.hy[j]) * sy; ctx.moveTo(px, py - 3.5); ctx.lineTo(px + 3.5, py); ctx.lineTo(px, py + 3.5); ctx.lineTo(px - 3.5, py); ctx.closePath(); }
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
    for (const [w, colOf] of [[5, () => "#000"], [2.5, k => D.colors[k]]]) {  // centroids: an x, outlined
      ctx.lineWidth = w;
      v.cent.forEach(([k, cx, cy]) => { const px = (cx - x0) * sx, py = (y1 - cy) * sy; ctx.strokeStyle = colOf(k); ctx.beginPath();
        ctx.moveTo(px - 5, py - 5); ctx.lineTo(px + 5, py + 5); ctx.moveTo(px + 5, py - 5); ctx.lineTo(px - 5, py + 5); ctx.stroke(); });
    }
    ctx.lineWidth = 2; ctx.strokeStyle = "#000"; ctx.beginPath();
    for (const [x, y] of v.sel) { const px = (x - x0) * sx, py = (y1 - y) * sy; ctx.moveTo(px + 4.5, py); ctx.arc(px, py, 4.5, 0, 2 * Math.PI); }
    ctx.stroke();
  }
  function hitPoint(px, py) {  // the shown point nearest to a CSS pixel of #proj (within 6 px): row, or null
    const v = projView; if (!v || !document.getElementById("proj").layout) return null;
    const a = plotArea(), sx = a.w / (a.xr[1] - a.xr[0]), sy = a.h / (a.yr[1] - a.yr[0]);
    let best = 36, hit = null;
    const look = (xs, ys, rows, base) => { for (let i = 0; i < xs.length; i++) {
      const dx = a.l + (xs[i] - a.xr[0]) * sx - px, dy = a.t + (a.yr[1] - ys[i]) * sy - py, d = dx * dx + dy * dy;
      if (d < best) { best = d; hit = base + rows[i]; } } };
    look(v.x, v.y, projRows, 0); look(v.hx, v.hy, heldRows, N);
    return hit;
  }

  function drawProjection(key) {
    const c = coords(key, S.basis), cl = clusters(key), hk = hiddenKey();
    projRows = remember("rows/" + hk, () => visibleRows(D.ex.y, N));
    const rows = projRows;
    const color = S.colorBy === "label" ? remember("lcol/" + hk, () => Array.from(rows, i => D.colors[D.ex.y[i]]))
      : remember("ccol/" + key + "/" + hk, () => Array.from(rows, i => clusterColor(cl[i])));
    const showHeld = H && D.cells[key]["held_" + S.basis] && document.getElementById("held").checked;
    const hc = showHeld ? coords(key, "held_" + S.basis) : null;
    heldRows = showHeld ? remember("hrows/" + hk, () => visibleRows(D.held.y, H)) : new Int32Array(0);
    const hr = heldRows;
    const at = r => r < N ? [c.x[r], c.y[r]] : (hc ? [hc.x[r - N], hc.y[r - N]] : null);
    const sel = S.selection ? S.selection.rows.filter(r => !S.hidden.has(ex(r).y) && at(r)) : [];
    const cent = D.cells[key]["cent_" + S.basis];
    const ci = []; for (let k = 0; k < L; k++) if (!S.hidden.has(k) && cent[k][0] !== null) ci.push(k);
    projView = { x: gather(c.x, rows), y: gather(c.y, rows), color: color,
      hx: showHeld ? gather(hc.x, hr) : new Float64Array(0), hy: showHeld ? gather(hc.y, hr) : new Float64Array(0),
      hcolor: remember("hcol/" + hk, () => Array.from(hr, j => labelColor(D.held.y[j]))),
      cent: ci.map(k => [k, cent[k][0], cent[k][1]]), sel: sel.map(at) };
    const rg = axisRanges(key), axes = S.basis + "/" + S.li + "/" + rg.x + "/" + rg.y;
    if (axes !== projAxes) {  // new ranges: plotly redraws the axes (an empty trace keeps them numeric)
      projAxes = axes;
      Plotly.react("proj", [{ type: "scatter", mode: "markers", x: [], y: [], hoverinfo: "skip" }],
        { margin: MARGIN, showlegend: false, uirevision: axes, hovermode: false, dragmode: "zoom",
          xaxis: { zeroline: false, range: rg.x }, yaxis: { zeroline: false, range: rg.y } },
        Object.assign({ doubleClick: "reset" }, PLOT_CFG));
    }
    paintProjection();
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

  // The hull-distance heatmap is drawn on a canvas of its own (a plotly heatmap replot, axes and colour bar
  // included, cost as much as the whole projection on every slider step). Colours: plotly's Viridis over the
  // finite distances shown; blank = undefined; hover shows the pair and its distance.
  const VIRIDIS = ["#440154", "#48186a", "#472d7b", "#424086", "#3b528b", "#33638d", "#2c728e", "#26828e", "#21918c",
    "#1fa088", "#28ae80", "#3fbc73", "#5ec962", "#84d44b", "#addc30", "#d8e219", "#fde725"].map(h => [1, 3, 5].map(i => parseInt(h.slice(i, i + 2), 16)));
  function viridis(t) {
    const f = Math.min(Math.max(t, 0), 1) * (VIRIDIS.length - 1), i = Math.min(Math.floor(f), VIRIDIS.length - 2), u = f - i;
    const c = VIRIDIS[i].map((v, k) => Math.round(v + (VIRIDIS[i + 1][k] - v) * u));
    return `rgb(${c[0]},${c[1]},${c[2]})`;
  }
  let distView = null;
  const HM = { l: 80, r: 56, t: 10, b: 80 };
  function heatmapCell(ev) {
    if (!distView) return null;
    const g = distView.geom, a = Math.floor((ev.offsetY - HM.t) / g.ch), b = Math.floor((ev.offsetX - HM.l) / g.cw);
    const n = distView.x.length;
    return a >= 0 && b >= 0 && a < n && b < n ? [a, b] : null;
  }
  function drawHeatmap(names, z) {
    const div = document.getElementById("dist");
    let cv = div.querySelector("canvas"), tip = div.querySelector(".tip");
    if (!cv) {
      cv = document.createElement("canvas"); tip = document.createElement("div"); tip.className = "tip";
      div.append(cv, tip);
      cv.addEventListener("mousemove", ev => {
        const hit = heatmapCell(ev);
        if (!hit) { tip.style.display = "none"; return; }
        const v = distView.z[hit[0]][hit[1]];
        tip.textContent = `${distView.x[hit[0]]} – ${distView.x[hit[1]]}: ${v === null ? "undefined" : v}`;
        tip.style.display = "block"; tip.style.left = (ev.offsetX + 12) + "px"; tip.style.top = (ev.offsetY + 8) + "px";
      });
      cv.addEventListener("mouseleave", () => { tip.style.display = "none"; });
    }
    const W = div.clientWidth || 500, Hh = div.clientHeight || 300, dpr = window.devicePixelRatio || 1;
    if (cv.width !== W * dpr || cv.height !== Hh * dpr) { cv.width = W * dpr; cv.height = Hh * dpr; cv.style.width = W + "px"; cv.style.height = Hh + "px"; }
    const ctx = cv.getContext("2d"); ctx.setTransform(dpr, 0, 0, dpr, 0, 0); ctx.clearRect(0, 0, W, Hh);
    const n = names.length, cw = (W - HM.l - HM.r) / Math.max(n, 1), ch = (Hh - HM.t - HM.b) / Math.max(n, 1);
    let lo = Infinity, hi = -Infinity;
    for (const r of z) for (const v of r) if (v !== null) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
    const span = hi > lo ? hi - lo : 1;
    for (let a = 0; a < n; a++) for (let b = 0; b < n; b++) {
      const v = z[a][b]; if (v === null) continue;
      ctx.fillStyle = viridis((v - lo) / span); ctx.fillRect(HM.l + b * cw, HM.t + a * ch, Math.ceil(cw), Math.ceil(ch));
    }
    const fs = Math.max(6, Math.min(11, Math.floor(Math.min(cw, ch)) + 1));
    ctx.fillStyle = "#444"; ctx.font = `${fs}px sans-serif`; ctx.textBaseline = "middle";
    ctx.textAlign = "right";
    for (let a = 0; a < n; a++) ctx.fillText(names[a], HM.l - 3, HM.t + (a + 0.5) * ch, HM.l - 4);
    for (let b = 0; b < n; b++) {
      ctx.save(); ctx.translate(HM.l + (b + 0.5) * cw, Hh - HM.b + 3); ctx.rotate(-Math.PI / 2);
      ctx.fillText(names[b], 0, 0, HM.b - 4); ctx.restore();
    }
    const bx = W - HM.r + 10, bh = Hh - HM.t - HM.b;  // colour bar
    for (let i = 0; i < bh; i++) { ctx.fillStyle = viridis(1 - i / bh); ctx.fillRect(bx, HM.t + i, 10, 1); }
    ctx.textAlign = "left"; ctx.font = "10px sans-serif";
    if (hi >= lo) { ctx.fillText(String(hi), bx + 13, HM.t + 4, HM.r - 24); ctx.fillText(String(lo), bx + 13, HM.t + bh - 4, HM.r - 24); }
    distView = { x: names, z: z, geom: { cw: cw, ch: ch } };
  }

  let ominFor = null;
  function drawDistances(key) {
    const cell = D.cells[key];
    const keep = []; for (let k = 0; k < L; k++) if (!S.hidden.has(k)) keep.push(k);
    const names = keep.map(k => D.labels[k]);
    drawHeatmap(names, keep.map(a => keep.map(b => cell.dist[a][b])));
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
  // Prewarm: decode every snapshot of the shown layer (coordinates in the current basis and the fixed one,
  // held-out points, clusters) in idle time, one snapshot per idle slot, so that the first visit of a
  // snapshot costs what a later one does. Restarted when the layer or the basis changes.
  let warmGen = 0;
  const idle = window.requestIdleCallback || (f => setTimeout(f, 1));
  function prewarm() {
    const gen = ++warmGen, li = S.li, basis = S.basis;
    let si = 0;
    function next() {
      if (gen !== warmGen || si >= D.steps.length) return;
      const key = D.steps[si++] + "|" + D.layers[li];
      if (D.cells[key]) {
        for (const b of new Set([basis, "fixed"])) if (D.cells[key][b]) coords(key, b);
        if (H && D.cells[key]["held_" + basis]) coords(key, "held_" + basis);
        clusters(key);
      }
      idle(next);
    }
    idle(next);
  }
  document.getElementById("layer").addEventListener("change", prewarm);
  document.getElementById("basis").addEventListener("change", prewarm);
  prewarm();
  // Hover and click on points: nearest shown point within 6 px of the mouse (the canvas lets plotly's drag
  // layer below it receive the mouse; a click is a mouse-down and -up at the same place).
  const projDiv = document.getElementById("proj");
  const projTip = document.createElement("div"); projTip.className = "tip"; projDiv.parentNode.appendChild(projTip);
  function hoverText(r) {
    const key = cellKey();
    if (r < N) return `${esc(D.ex.id[r])}<br>${esc(D.labels[D.ex.y[r]])} · cluster ${clusters(key)[r]}`;
    const j = r - N, pred = D.cells[key].held_pred;
    return `${esc(D.held.id[j])} (${esc(D.held.split)})<br>gold ${esc(labelName(D.held.y[j]))} · nearest hull ${esc(labelName(pred[j]))}`;
  }
  function local(ev) { const b = projDiv.getBoundingClientRect(); return [ev.clientX - b.left, ev.clientY - b.top]; }
  projDiv.addEventListener("mousemove", ev => {
    const [px, py] = local(ev);
    let text = null;
    if (projView) for (const [k, cx, cy] of projView.cent) {  // label centroids (drawn on top)
      const [qx, qy] = toPixel(cx, cy); if (Math.hypot(qx - px, qy - py) <= 6) { text = "centroid of " + esc(D.labels[k]); break; }
    }
    const r = text === null ? hitPoint(px, py) : null;
    if (r !== null) text = hoverText(r);
    if (text === null) { projTip.style.display = "none"; return; }
    projTip.innerHTML = text; projTip.style.display = "block";
    projTip.style.left = (projDiv.offsetLeft + px + 12) + "px"; projTip.style.top = (projDiv.offsetTop + py + 8) + "px";
  });
  projDiv.addEventListener("mouseleave", () => { projTip.style.display = "none"; });
  let down = null;
  projDiv.addEventListener("mousedown", ev => { down = local(ev); }, true);
  window.addEventListener("mouseup", ev => {
    if (!down) return; const [px, py] = local(ev), moved = Math.hypot(px - down[0], py - down[1]); down = null;
    if (moved > 3) return;
    const r = hitPoint(px, py); if (r !== null) select(`point ${ex(r).id}`, [r]);
  }, true);  // capture: plotly's drag handler may stop the event before it bubbles up
  projDiv.on("plotly_relayout", paintProjection);  // zoom, pan, reset, resize
  projDiv.on("plotly_afterplot", paintProjection);
  window.tuneprobeExplorer = { state: S, data: D, render: render, distances: () => distView, points: () => projView, toPixel: toPixel, ranges: () => axisRanges(cellKey()), rows: () => projRows, heldRows: () => heldRows };
})();
