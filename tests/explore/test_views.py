"""Projections, Mapper graphs and the page payload of a synthetic series."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from tuneprobe.explore.page import build_page, payload
from tuneprobe.explore.views import MapperParams, held_out_predictions, mapper_graph, projections, shown_rows

from .conftest import synthetic_series


def _decode(q):
    a = np.frombuffer(base64.b64decode(q["b64"]), dtype="<i2").astype(np.float64)
    return (q["lo"] + (a + 32768) / 65535 * (q["hi"] - q["lo"])).reshape(-1, 2)


def test_shown_rows_stratified_subsample(series):
    assert shown_rows(series, 1000).tolist() == list(range(series.n))
    rows = shown_rows(series, 30, seed=1)
    assert len(rows) == 30 and np.all(np.diff(rows) > 0)
    assert np.bincount(series.y[rows]).tolist() == [10, 10, 10]
    assert rows.tolist() == shown_rows(series, 30, seed=1).tolist()
    assert rows.tolist() != shown_rows(series, 30, seed=2).tolist()


def test_projections_fixed_basis_shows_movement(series):
    rows = shown_rows(series, 1000)
    proj = projections(series, rows)
    assert set(proj) == set(series.cells)
    p0, p2 = proj[(0, 1)], proj[(10, 1)]
    assert p0["fixed"].shape == (series.n, 2) and p0["centroids_fixed"].shape == (3, 2)
    # the label clouds move apart over snapshots: in the fixed basis the centroid spread grows
    spread = [np.ptp(proj[(s, 1)]["centroids_fixed"], axis=0).max() for s in series.steps]
    assert spread[0] < spread[1] < spread[2]
    # own basis: a PCA of that cell alone, centred, variance in decreasing order
    own = p2["own"]
    assert np.allclose(own.mean(axis=0), 0, atol=1e-6) and own[:, 0].var() >= own[:, 1].var()
    # centroids projected with the same map as the points: the label means of the projected points
    for k in range(3):
        assert np.allclose(p2["fixed"][series.y == k].mean(axis=0), p2["centroids_fixed"][k], atol=1e-4)


def test_mapper_graph_links_are_shared_members():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(40, 5)), rng.normal(size=(40, 5)) + 8])
    lens = X[:, :2]
    g = mapper_graph(X, lens, MapperParams(n_cubes=4, overlap=0.4))
    assert g["nodes"] and all(len(m) > 0 for m in g["nodes"])
    members = [set(m.tolist()) for m in g["nodes"]]
    expected = {
        (i, j) for i in range(len(members)) for j in range(i + 1, len(members)) if members[i] & members[j]
    }
    assert set(g["links"]) == expected
    # two far-apart blobs never share a node
    assert all(max(m) < 40 or min(m) >= 40 for m in g["nodes"])


def test_payload_round_trips_and_page_is_self_contained(series):
    data = payload(series, max_points=1000)
    assert data["steps"] == series.steps and data["layers"] == series.layers
    cell = data["cells"]["10|2"]
    rows = np.arange(series.n)
    fixed = projections(series, rows)[(10, 2)]["fixed"]
    span = fixed.max() - fixed.min()
    assert np.abs(_decode(cell["fixed"]) - fixed).max() <= span / 65535 + 1e-9
    clusters = np.frombuffer(base64.b64decode(cell["clusters"]), dtype="<i4")
    assert clusters.tolist() == np.asarray(series.cells[(10, 2)].cell.clusters).tolist()
    assert data["ex"]["id"] == series.example_ids
    assert [data["sentences"][s] for s in data["ex"]["s"]] == [list(s) for s in series.sentences]
    small = payload(synthetic_series(), max_points=30)
    assert len(small["ex"]["id"]) == 30 and "stratified subsample of 30 of 60 train" in small["rule"]
    assert "all 12 test examples" in small["rule"]
    tiny = payload(synthetic_series(), max_points=6)
    assert len(tiny["held"]["id"]) == 6 and "subsample of 6 of 12 test" in tiny["rule"]
    assert sorted(tiny["held"]["y"]) == [0, 0, 1, 1, 2, 2]
    assert all(len(c["held_pred"]) == 6 for c in tiny["cells"].values())
    page = build_page(data)
    blob = page.split("type='application/json'>", 1)[1].split("</script>", 1)[0]
    assert json.loads(blob)["task"] == "toy-task"
    assert "src=" not in page.split("<body>", 1)[1]


def test_held_out_points_projected_and_predicted_by_nearest_hull(series):
    rows = np.arange(series.n)
    proj = projections(series, rows)
    h = series.held_out
    pred = held_out_predictions(series)
    assert set(pred) == set(series.cells)
    for k, sl in series.cells.items():
        H = h.X[k].astype(np.float64)
        assert proj[k]["held_fixed"].shape == (len(H), 2)
        # a held-out point equal to a training point lies inside that point's cluster hull
        same = held_out_predictions_for(series, k, sl.X[:3])
        assert same.tolist() == series.y[:3].tolist()
    # the clouds are well apart at the last snapshot: every held-out example is predicted right
    assert pred[(10, 2)].tolist() == h.y.tolist()
    data = payload(series)
    assert data["held"]["id"] == h.example_ids
    assert data["cells"]["10|2"]["held_pred"] == pred[(10, 2)].tolist()
    assert [data["sentences"][s] for s in data["held"]["s"]] == [list(s) for s in h.sentences]


def held_out_predictions_for(series, key, X):
    """Nearest-hull predictions of the rows X at one cell (the held-out set replaced by X)."""
    from dataclasses import replace

    held = replace(series.held_out, X={key: np.asarray(X, dtype=np.float32)})
    return held_out_predictions(replace(series, held_out=held))[key]


def test_umap_absent_means_pca_only_with_a_note(series, monkeypatch):
    import tuneprobe.explore.page as page_mod

    monkeypatch.setattr(page_mod, "umap_available", lambda: False)
    data = payload(series, umap=True)
    assert "not installed" in data["umap_note"]
    assert all("umap" not in c and "held_umap" not in c for c in data["cells"].values())
    assert "not computed" in payload(series)["umap_note"]


@pytest.mark.slow
def test_umap_projection_where_installed(series):
    pytest.importorskip(
        "umap", reason="umap-learn is not installed (optional: pip install 'tuneprobe[umap]')"
    )
    data = payload(series, umap=True, seed=3)
    assert "UMAP: umap-learn" in data["umap_note"]
    n, m = series.n, len(series.held_out.y)
    for step, layer in series.cells:
        c = data["cells"][f"{step}|{layer}"]
        emb = _decode(c["umap"])
        assert emb.shape == (n, 2) and np.isfinite(emb).all() and np.ptp(emb, axis=0).min() > 0
        assert _decode(c["held_umap"]).shape == (m, 2)
        assert len(c["cent_umap"]) == len(series.labels)
        # the label clouds stay apart in the layout: each point is nearer its own label's centroid
        cent = np.array(c["cent_umap"], dtype=float)
        own = np.linalg.norm(emb - cent[series.y], axis=1)
        other = np.min([np.linalg.norm(emb - cent[k], axis=1) for k in range(len(cent))], axis=0)
        assert np.mean(own <= other + 1e-9) > 0.9
    assert payload(series, umap=True, seed=3)["cells"] == data["cells"]  # seeded: the same page
