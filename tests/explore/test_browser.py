"""The explorer in headless Chromium (Debian's ``chromium`` driven by the ``playwright`` package): slider
and layer selector change every view, a Mapper node and a point list the right examples, node members are
tracked across snapshots, search and the label filter work; no console errors, no network requests.
Screenshots go to ``test-artifacts/``. Outside CI a missing browser or playwright skips; in CI it fails."""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from tuneprobe.explore.page import build_page, payload

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def _unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _views(page):
    """A fingerprint of every view: projection x data, Mapper SVG, heatmap z, outside_min marker."""
    return page.evaluate(
        """() => ({
        proj: Array.from(window.tuneprobeExplorer.points().x),
        mapper: document.querySelector('#mapper svg').innerHTML,
        dist: JSON.stringify(window.tuneprobeExplorer.distances().z),
        marker: document.getElementById('omin').layout.shapes[0].x0,
        step: document.getElementById('step-label').textContent })"""
    )


def _listed(page) -> list[str]:
    return page.eval_on_selector_all("#details .ex", "els => els.map(e => e.dataset.id)")


def _browser():
    """(playwright's ``sync_playwright``, the chromium executable), or skip/fail (:func:`_unavailable`)."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -e '.[dev]')")
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        _unavailable("no chromium browser (apt-get install -y --no-install-recommends chromium)")
    return sync_playwright, exe


def test_explorer_in_headless_chromium(series, tmp_path):
    sync_playwright, exe = _browser()
    data = payload(series)
    html = tmp_path / "explorer.html"
    html.write_text(build_page(data), encoding="utf-8")
    ids = np.asarray(series.example_ids)
    errors: list[str] = []
    requests: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"], timeout=120_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.set_default_timeout(60_000)
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("request", lambda r: requests.append(r.url))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_selector("#mapper svg .node")
            start = _views(page)
            assert start["step"].startswith("10 ")

            # snapshot slider: every view changes
            page.fill("#step", "0")
            after_step = _views(page)
            assert after_step["step"].startswith("0 ")
            for view in ("proj", "mapper", "dist", "marker"):
                assert after_step[view] != start[view], view
            # layer selector: the projection, the graph and the distances change
            page.select_option("#layer", "0")
            after_layer = _views(page)
            for view in ("proj", "mapper", "dist"):
                assert after_layer[view] != after_step[view], view
            page.screenshot(path=str(ARTIFACTS / "explorer-step0-layer1.png"))

            # click a Mapper node: the details list its members
            cell = data["cells"]["0|1"]
            n = max(range(len(cell["nodes"])), key=lambda k: len(cell["nodes"][k]))
            page.click(f"#mapper .node[data-node='{n}']")
            members = cell["nodes"][n]
            assert _listed(page) == ids[members].tolist()
            golds = page.eval_on_selector_all("#details .gold", "els => els.map(e => e.textContent)")
            assert golds == [series.labels[series.y[i]] for i in members]
            marks = page.eval_on_selector_all(
                "#details .ex", "els => els.map(e => e.querySelector('mark').textContent)"
            )
            assert marks == [series.sentences[i][series.units[i][0]] for i in members]
            # tracking: at another snapshot exactly the nodes holding tracked members are opaque
            page.fill("#step", "2")
            later = data["cells"]["10|1"]
            want = sorted(k for k, m in enumerate(later["nodes"]) if set(m) & set(members))
            got = page.eval_on_selector_all(
                "#mapper .node",
                "els => els.filter(e => e.getAttribute('opacity') === '1').map(e => +e.dataset.node)",
            )
            assert sorted(got) == want and want
            assert f"tracking {len(members)} examples" in page.text_content("#mapper-info")
            assert _listed(page) == ids[members].tolist()  # the selection survives the slider
            page.screenshot(path=str(ARTIFACTS / "explorer-node-tracked.png"))

            # click a point (the one farthest from every centroid, so no centroid marker is on top)
            page.click("#clear")
            page.uncheck("#held")
            xy = page.evaluate(
                """() => { const gd = document.getElementById('proj'), v = window.tuneprobeExplorer.points();
                let best = -1, bi = 0;
                for (let i = 0; i < v.x.length; i++) { let m = Infinity;
                  for (const [, cx, cy] of v.cent) m = Math.min(m, Math.hypot(v.x[i] - cx, v.y[i] - cy));
                  if (m > best) { best = m; bi = i; } }
                // pixels by plotly's own axes: the canvas must be drawn in register with them
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                return { i: bi, row: window.tuneprobeExplorer.rows()[bi],
                         x: r.left + xa._offset + xa.l2p(v.x[bi]),
                         y: r.top + ya._offset + ya.l2p(v.y[bi]) }; }"""
            )
            # the canvas has paint where plotly's axes put the point
            painted = page.evaluate(
                """([x, y]) => { const cv = document.querySelector('#proj ~ canvas.points');
                const b = cv.getBoundingClientRect(), k = cv.width / b.width;
                const i = Math.round((x - b.left) * k), j = Math.round((y - b.top) * k);
                const px = cv.getContext('2d').getImageData(i, j, 1, 1).data;
                return px[3]; }""",
                [xy["x"], xy["y"]],
            )
            assert painted > 0
            page.mouse.move(xy["x"], xy["y"])
            # hover: the point's own tooltip names the example, its gold label and its cluster now
            tip = page.wait_for_selector("#proj ~ .tip", state="visible")
            row = xy["row"]
            cluster = data["cells"]["10|1"]["clusters"]
            cl = int(np.frombuffer(base64.b64decode(cluster), dtype="<i4")[row])
            want_tip = f"{series.example_ids[row]}{series.labels[series.y[row]]} · cluster {cl}"
            assert tip.text_content() == want_tip
            page.mouse.click(xy["x"], xy["y"])
            page.wait_for_selector("#details .ex")
            assert _listed(page) == [series.example_ids[row]]

            # a label centroid's tooltip; zoom (plotly relayout): the canvas follows the axes
            cxy = page.evaluate(
                """() => { const gd = document.getElementById('proj'), r = gd.getBoundingClientRect();
                const c = window.tuneprobeExplorer.points().cent[0], fl = gd._fullLayout;
                return { k: c[0], x: r.left + fl.xaxis._offset + fl.xaxis.l2p(c[1]),
                         y: r.top + fl.yaxis._offset + fl.yaxis.l2p(c[2]) }; }"""
            )
            page.mouse.move(cxy["x"], cxy["y"])
            assert page.text_content("#proj ~ .tip") == f"centroid of {series.labels[cxy['k']]}"
            page.evaluate(
                """() => { const v = window.tuneprobeExplorer.points(), x = v.x[0], y = v.y[0];
                return Plotly.relayout('proj', {'xaxis.range': [x - 1, x + 1],
                                                'yaxis.range': [y - 1, y + 1]}); }"""
            )
            zoomed = page.evaluate(
                """() => { const cv = document.querySelector('#proj ~ canvas.points');
                return cv.getContext('2d').getImageData(cv.width >> 1, cv.height >> 1, 1, 1).data[3]; }"""
            )
            assert zoomed > 0  # the zoomed-on point is now in the middle of the canvas
            page.evaluate(
                """() => { const r = window.tuneprobeExplorer.ranges();
                return Plotly.relayout('proj', {'xaxis.range': r.x, 'yaxis.range': r.y}); }"""
            )

            # click a held-out point (the one farthest from every training point and centroid): its gold
            # label and the nearest-hull prediction of this snapshot and layer
            page.check("#held")
            hxy = page.evaluate(
                """() => { const gd = document.getElementById('proj'), v = window.tuneprobeExplorer.points();
                const others = [[v.x, v.y], [v.cent.map(c => c[1]), v.cent.map(c => c[2])]];
                let best = -1, bi = 0;
                for (let j = 0; j < v.hx.length; j++) { let m = Infinity;
                  for (const [xs, ys] of others) for (let i = 0; i < xs.length; i++)
                    m = Math.min(m, Math.hypot(v.hx[j] - xs[i], v.hy[j] - ys[i]));
                  if (m > best) { best = m; bi = j; } }
                const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
                return { j: window.tuneprobeExplorer.heldRows()[bi],
                         x: r.left + xa._offset + xa.l2p(v.hx[bi]),
                         y: r.top + ya._offset + ya.l2p(v.hy[bi]) }; }"""
            )
            page.mouse.move(hxy["x"], hxy["y"])
            page.mouse.click(hxy["x"], hxy["y"])
            page.wait_for_selector(f"#details .ex[data-id='test{hxy['j']}']")
            assert _listed(page) == [f"test{hxy['j']}"]
            held = series.held_out
            assert page.text_content("#details .gold") == series.labels[held.y[hxy["j"]]]
            predicted = data["cells"]["10|1"]["held_pred"][hxy["j"]]
            assert page.text_content("#details .pred") == series.labels[predicted]

            # search by word
            word = series.sentences[7][2]
            page.fill("#search", word)
            page.press("#search", "Enter")
            want = [series.example_ids[i] for i in range(series.n) if word in series.sentences[i]]
            want += [f"test{j}" for j, sent in enumerate(series.held_out.sentences) if word in sent]
            assert _listed(page) == want

            # heatmap hover: the pair under the mouse and its distance at this snapshot and layer
            box = page.locator("#dist canvas").bounding_box()
            g = page.evaluate("() => window.tuneprobeExplorer.distances().geom")
            page.mouse.move(box["x"] + 80 + 2.5 * g["cw"], box["y"] + 10 + 0.5 * g["ch"])
            dist = data["cells"]["10|1"]["dist"][0][2]
            hm_tip = page.wait_for_selector("#dist .tip", state="visible").text_content()
            pair, value = hm_tip.split(": ")
            assert pair == "alpha – gamma" and float(value) == dist

            # label filter: unchecking a label removes its points from the projection and the heatmap
            page.uncheck("#legend input[data-label='1']")
            left = page.evaluate("() => window.tuneprobeExplorer.points().x.length")
            assert left == int(np.sum(series.y != 1))
            left = page.evaluate("() => window.tuneprobeExplorer.points().hx.length")
            assert left == int(np.sum(series.held_out.y != 1))
            assert page.evaluate("() => window.tuneprobeExplorer.distances().x") == ["alpha", "gamma"]
            page.screenshot(path=str(ARTIFACTS / "explorer-filtered.png"), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []


@pytest.mark.slow
def test_umap_projection_in_the_selector(series, tmp_path):
    pytest.importorskip(
        "umap", reason="umap-learn is not installed (optional: pip install 'tuneprobe[umap]')"
    )
    sync_playwright, exe = _browser()
    html = tmp_path / "explorer.html"
    html.write_text(build_page(payload(series, umap=True)), encoding="utf-8")
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=["--no-sandbox"], timeout=120_000)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(html.resolve().as_uri(), wait_until="load")
            page.wait_for_selector("#mapper svg .node")
            assert "UMAP: umap-learn" in page.text_content("header .note")
            pca = page.evaluate("() => Array.from(window.tuneprobeExplorer.points().x)")
            page.select_option("#basis", "umap")
            umap_x = page.evaluate("() => Array.from(window.tuneprobeExplorer.points().x)")
            assert len(umap_x) == len(pca) == series.n and umap_x != pca
            assert page.evaluate("() => window.tuneprobeExplorer.points().hx.length") == len(
                series.held_out.y
            )
            page.fill("#step", "0")  # the slider moves the UMAP points too
            assert page.evaluate("() => Array.from(window.tuneprobeExplorer.points().x)") != umap_x
        finally:
            browser.close()
    assert errors == []
