"""Hull distances do not depend on what the process compiled before (issue 7).

The compiled solver ``_hull_kernel.solve_pairs`` used to call its jitted helpers. Its object code (what numba
caches on disk) carries its own copies of them, optimised again after linking; but in a process that had
compiled a helper on its own -- every process that compiled the kernel instead of loading it from numba's
cache, e.g. a test process on a clean clone -- the calls were bound to that separately optimised copy, and
with the kernel's reassociation/contraction flags the two copies round differently. So the in-process local
run of ``tests/experiments/test_dask.py`` and the Dask workers (kernel from the cache) differed in the last
bits. The helpers are now inlined into ``solve_pairs`` (one function, no calls to bind).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np

#: a small fixed problem: 6 overlapping Gaussian clusters in 16-d, 3 labels; every pair's distance, certified
#: lower bound and gap, float64 ``[3, 6, 6]``
PROBLEM = """
import numpy as np

from tuneprobe.directprobe.clustering import Clustering
from tuneprobe.directprobe.hulls import cluster_distances


def distances():
    rng = np.random.default_rng(1)
    K, n, d = 6, 20, 16
    X = rng.normal(size=(K * n, d)) + np.repeat(rng.normal(size=(K, d)) * 0.5, n, axis=0)
    clustering = Clustering(np.repeat(np.arange(K), n), np.arange(K) % 3, 3)
    res = cluster_distances(X, clustering, same_label=True, backend="numpy", device="cpu")
    return np.stack([res.distance, res.lower, res.gap])
"""

#: argv[1] "plain": the kernel as a fresh process gets it (from numba's cache once compiled); "helpers-first":
#: every helper overload numba has cached is loaded on its own before solve_pairs is -- the state a process
#: that compiled the kernel itself is in. Writes the distances to argv[2].
SCRIPT = (
    PROBLEM
    + """
import sys

from tuneprobe.directprobe import _hull_kernel as hk

if sys.argv[1] == "helpers-first":
    assert not hk.solve_pairs.overloads
    for f in vars(hk).values():
        if f is not hk.solve_pairs and hasattr(f, "_cache"):
            for key in f._cache._cache_file._load_index():  # numba's cache index: (signature, ...) keys
                f.compile(key[0])
np.save(sys.argv[2], distances())
"""
)


def _in_process() -> np.ndarray:
    ns: dict[str, object] = {}
    exec(PROBLEM, ns)
    return ns["distances"]()  # type: ignore[operator]


def test_solve_pairs_calls_no_other_jitted_function():
    from numba.core.dispatcher import Dispatcher

    from tuneprobe.directprobe import _hull_kernel as hk

    helpers = {n: f for n, f in vars(hk).items() if isinstance(f, Dispatcher) and f is not hk.solve_pairs}
    assert len(helpers) >= 5
    assert sorted(n for n, f in helpers.items() if f.targetoptions.get("inline") != "always") == []


def test_distances_do_not_depend_on_what_the_process_compiled_first(tmp_path):
    here = _in_process()  # this process: whatever earlier tests compiled or loaded (also warms numba's cache)
    assert np.isfinite(here).all() and (here[0] > 0).sum() >= 10
    runs = {}
    for mode in ("plain", "helpers-first"):
        out = tmp_path / f"{mode}.npy"
        proc = subprocess.run(
            [sys.executable, "-c", SCRIPT, mode, str(out)], capture_output=True, text=True, timeout=600
        )
        assert proc.returncode == 0, proc.stderr
        runs[mode] = np.load(out)
    assert runs["plain"].tobytes() == runs["helpers-first"].tobytes()
    assert here.tobytes() == runs["plain"].tobytes()
