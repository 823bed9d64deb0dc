"""What the explorer shows, computed in Python: 2-D PCA projections and Mapper graphs of every cell.

Projections. For each layer, the *fixed* basis is a 2-component PCA fitted on the shown points of every
snapshot of that layer together, so that movement across snapshots is visible; the *own* basis is a PCA of
the one (snapshot, layer), its component signs aligned with the fixed basis (a sign flip is not movement).
Label centroids (the DirectProbe cell's, over all fitted points) are projected with the same bases.

UMAP (optional, ``umap-learn``: :func:`umap_projections`): per (snapshot, layer) a 2-D UMAP of the shown
points (``random_state`` = the page seed, so a page is reproducible), initialised with the fixed-basis PCA
coordinates (scaled to unit spread) so that successive snapshots start from the same layout; held-out points
and label centroids are placed with the fitted model's ``transform``.

Mapper (KeplerMapper, ``kmapper``). Lens: the fixed-basis projection (so the cover is the same region of
the same plane at every snapshot of a layer); cover: ``n_cubes`` x ``n_cubes`` overlapping squares with
``overlap`` fractional overlap; clusterer: DBSCAN in the full representation space with ``min_samples``
and ``eps`` = the median distance of the points to their ``min_samples``-th nearest neighbour (per cell,
times ``eps_scale``). Nodes: the clusters (their member rows); edges: nodes that share members. A node is
drawn at the mean fixed-basis position of its members.

Subsampling. Series with more than ``max_points`` examples show a stratified subsample of ``max_points``
(:func:`tuneprobe.experiments.execute.stratified_subsample`, seed ``seed``): every label keeps its share,
at least one example.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tuneprobe.explore.data import HeldOut, Series


@dataclass(frozen=True)
class MapperParams:
    """Mapper settings (module docstring)."""

    n_cubes: int = 10
    overlap: float = 0.3
    min_samples: int = 3
    eps_scale: float = 1.0


def stratified_rows(y: np.ndarray, max_points: int, seed: int = 0) -> np.ndarray:
    """Sorted int64 rows of label ids ``y`` ``[n]`` to show: all, or a stratified subsample of
    ``max_points`` (module docstring)."""
    from tuneprobe.experiments.execute import stratified_subsample

    by_label = {int(k): np.flatnonzero(y == k) for k in np.unique(y)}
    return stratified_subsample(by_label, max_points, seed).astype(np.int64)


def shown_rows(series: Series, max_points: int, seed: int = 0) -> np.ndarray:
    """Rows of the series' examples the page shows (:func:`stratified_rows`)."""
    return stratified_rows(series.y, max_points, seed)


def held_rows(held: HeldOut, max_points: int, seed: int = 0) -> np.ndarray:
    """Rows of the held-out examples the page shows (:func:`stratified_rows`)."""
    return stratified_rows(held.y, max_points, seed)


def _pca(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean ``[d]``, components ``[2, d]``) of a 2-component PCA of X ``[n, d]`` (eigenvectors of the
    ``[d, d]`` scatter matrix, largest first; fewer than 2 dims: zero-padded)."""
    mean = X.mean(axis=0)
    Xc = X - mean
    w, v = np.linalg.eigh(Xc.T @ Xc)
    comp = np.zeros((2, X.shape[1]))
    k = min(2, X.shape[1])
    comp[:k] = v[:, ::-1][:, :k].T
    return mean, comp


def projections(series: Series, rows: np.ndarray) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """``(step, layer) -> {"fixed", "own": float64 [len(rows), 2], "centroids_fixed", "centroids_own":
    float64 [n_labels, 2] (NaN rows for labels without points)}``."""
    out: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for layer in series.layers:
        keys = [(s, layer) for s in series.steps if (s, layer) in series.cells]
        pooled = np.concatenate([np.asarray(series.cells[k].X[rows], dtype=np.float64) for k in keys])
        f_mean, f_comp = _pca(pooled)
        for k in keys:
            sl = series.cells[k]
            X = np.asarray(sl.X[rows], dtype=np.float64)
            o_mean, o_comp = _pca(X)
            o_comp *= np.where(np.sum(o_comp * f_comp, axis=1) < 0, -1.0, 1.0)[:, None]
            C = np.asarray(sl.cell.centroids, dtype=np.float64)
            out[k] = {
                "fixed": (X - f_mean) @ f_comp.T,
                "own": (X - o_mean) @ o_comp.T,
                "centroids_fixed": (C - f_mean) @ f_comp.T,
                "centroids_own": (C - o_mean) @ o_comp.T,
            }
            if series.held_out is not None and k in series.held_out.X:
                H = np.asarray(series.held_out.X[k], dtype=np.float64)
                out[k]["held_fixed"] = (H - f_mean) @ f_comp.T
                out[k]["held_own"] = (H - o_mean) @ o_comp.T
    return out


def umap_available() -> bool:
    """Whether ``umap-learn`` is installed (the explorer then offers a UMAP projection)."""
    import importlib.util

    return importlib.util.find_spec("umap") is not None


def umap_projections(
    series: Series,
    rows: np.ndarray,
    fixed: dict[tuple[int, int], dict[str, np.ndarray]],
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
) -> dict[tuple[int, int], dict[str, np.ndarray]]:
    """``(step, layer) -> {"umap": float64 [len(rows), 2], "centroids_umap": float64 [n_labels, 2] (NaN rows
    for labels without points), and "held_umap": float64 [m, 2] where the series has held-out points}``
    (module docstring). ``fixed``: :func:`projections` of the same rows (the initial layouts)."""
    import warnings

    import umap

    out: dict[tuple[int, int], dict[str, np.ndarray]] = {}
    for k, sl in sorted(series.cells.items()):
        X = np.asarray(sl.X[rows], dtype=np.float32)
        init = fixed[k]["fixed"] - fixed[k]["fixed"].mean(axis=0)
        init = init / (init.std() or 1.0)
        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=min(n_neighbors, len(X) - 1),
            min_dist=min_dist,
            random_state=seed,
            init=init,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # n_jobs=1 forced by random_state; init array notes
            emb = reducer.fit_transform(X)
            C = np.asarray(sl.cell.centroids, dtype=np.float64)
            ok = np.isfinite(C).all(axis=1)
            cent = np.full((len(C), 2), np.nan)
            if ok.any():
                cent[ok] = reducer.transform(C[ok].astype(np.float32))
            out[k] = {"umap": np.asarray(emb, dtype=np.float64), "centroids_umap": cent}
            if series.held_out is not None and k in series.held_out.X:
                H = np.asarray(series.held_out.X[k], dtype=np.float32)
                out[k]["held_umap"] = np.asarray(reducer.transform(H), dtype=np.float64)
    return out


def held_out_predictions(series: Series) -> dict[tuple[int, int], np.ndarray]:
    """``(step, layer) ->`` int64 ``[m]`` nearest-hull predicted label ids of the held-out examples, from the
    cell's clusters of all the series' rows (:func:`tuneprobe.directprobe.predict.nearest_hull_predict`;
    -1 when no cluster is left)."""
    from tuneprobe.directprobe.clustering import Clustering
    from tuneprobe.directprobe.predict import nearest_hull_predict

    out: dict[tuple[int, int], np.ndarray] = {}
    if series.held_out is None:
        return out
    for k, H in series.held_out.X.items():
        if k not in series.cells:
            continue
        sl = series.cells[k]
        a = np.asarray(sl.cell.clusters, dtype=np.int64)
        K = int(a.max()) + 1 if a.size else 0
        if K == 0:
            out[k] = np.full(len(H), -1, dtype=np.int64)
            continue
        cl_labels = np.zeros(K, dtype=np.int64)
        cl_labels[a[a >= 0]] = series.y[a >= 0]
        clustering = Clustering(a, cl_labels, len(series.labels), list(series.labels))
        pred = nearest_hull_predict(np.asarray(sl.X, dtype=np.float64), clustering, H, device="cpu")
        out[k] = np.asarray(pred.labels, dtype=np.int64)
    return out


def mapper_graph(X: np.ndarray, lens: np.ndarray, params: MapperParams = MapperParams()) -> dict[str, Any]:
    """Mapper graph of X ``[n, d]`` over ``lens`` ``[n, 2]`` (module docstring).

    Returns ``{"nodes": list of int64 member-row arrays (sorted; nodes ordered by their first member),
    "links": list of (i, j) node index pairs, i < j, sharing at least one member, "eps": the DBSCAN eps}``.
    """
    import kmapper
    from sklearn.cluster import DBSCAN
    from sklearn.neighbors import NearestNeighbors

    n = len(X)
    k = min(params.min_samples, n)
    dist, _ = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    eps = float(np.median(dist[:, -1])) * params.eps_scale
    eps = eps if eps > 0 else 1e-9
    mapper = kmapper.KeplerMapper(verbose=0)
    graph = mapper.map(
        lens,
        X,
        cover=kmapper.Cover(n_cubes=params.n_cubes, perc_overlap=params.overlap),
        clusterer=DBSCAN(eps=eps, min_samples=k),
        remove_duplicate_nodes=True,
    )
    names = sorted(graph["nodes"], key=lambda name: (min(graph["nodes"][name]), name))
    index = {name: i for i, name in enumerate(names)}
    nodes = [np.array(sorted(graph["nodes"][name]), dtype=np.int64) for name in names]
    links = set()
    for a, targets in graph["links"].items():
        for b in targets:
            i, j = sorted((index[a], index[b]))
            links.add((i, j))
    return {"nodes": nodes, "links": sorted(links), "eps": eps}
