#!/usr/bin/env python
"""Benchmark tuneprobe's DirectProbe against the reference implementation (utahnlp/DirectProbe).

Both sides run on the same vectors, in the same invocation, each in its own subprocess:

* **ours**: ``tuneprobe.directprobe`` (``DirectProbe.fit``, the hull-distance matrix, nearest-hull
  prediction);
* **reference**: a checkout of utahnlp/DirectProbe, run with its own interpreter through its no-Gurobi
  path. A stub ``gurobipy`` whose ``Model`` raises is put first on ``PYTHONPATH`` in a temporary directory,
  so ``Space.check_overlap_detector`` picks ``Space.hardSVM`` (standardised linear SVC as the overlap
  test). The inputs are written in the reference's own text formats (entities, label set, one vector per
  line) with a ``config.ini``, and a small driver generated at run time calls the same functions as its
  ``main.probe`` and ``main.prediction``, timing each phase.

Phases timed on each side: clustering, hull-distance matrix (every pair of clusters with different labels),
and nearest-hull prediction of the test split. Peak memory is the largest single process's maximum RSS
(``wait4``, what ``/usr/bin/time -v`` reports) and the sampled peak of the summed PSS of the whole process
tree (the reference forks up to 30 joblib workers).

Agreement: partitions are compared up to cluster relabelling. Where they differ, an exact LP (scipy HiGHS)
checks each side's result: whether two different-label clusters overlap (invalid result) and whether two
same-label clusters could have been merged without overlapping anything (a merge that was refused although
feasible). Hull distances are compared cluster-pair-wise (when the partitions agree) and label-pair-wise
(mean and min over cluster pairs).

Usage (see bench/README.md)::

    python bench/directprobe.py --reference-dir /work/ref/DirectProbe \
        --reference-python /work/ref/venv/bin/python
    python bench/directprobe.py --ours-only --tasks ps-role

The reference's code is never copied into this repository: the checkout's location is an argument
(``--reference-dir`` or ``$DIRECTPROBE_REF_DIR``), and so is its interpreter (``--reference-python`` or
``$DIRECTPROBE_REF_PYTHON``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "bench" / "out"

# task -> how its vectors are extracted (PAPER.md §2): word tasks use the subword mean, trec50 the [CLS]
# vector.
TASKS: dict[str, dict[str, str]] = {
    "ps-role": {"sentence_pooling": "mean"},
    "trec50": {"sentence_pooling": "cls"},
}
TARGETS: dict[str, float] = {"clustering": 50.0, "distances": 20.0, "prediction": 100.0}
PHASES: tuple[str, ...] = ("clustering", "distances", "prediction")
ARRAY_KEYS: tuple[str, ...] = ("assignment", "cluster_labels", "D", "D_lower", "pred", "point_dist")
REL_TOL = 1e-3  # relative tolerance for hull distances
ABS_TOL = 1e-6  # two distances both below this count as equal (touching hulls)
PAGE = os.sysconf("SC_PAGE_SIZE")
PSS_EVERY = 5  # PSS of the whole tree costs ~0.5 s with 30 workers: sample it every 5th poll only


# -----------------------------------------------------------------------------------------------------------
# inputs


@dataclasses.dataclass
class TaskData:
    """Train and test vectors of one task, with test labels expressed as train label ids (-1 if unseen in
    train)."""

    task: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    labels: list[str]
    test_names: list[str]  # label name of every test example (may include labels unseen in train)
    source: str

    def save(self, path: Path) -> None:
        np.savez(
            path,
            X_train=self.X_train,
            y_train=self.y_train,
            X_test=self.X_test,
            y_test=self.y_test,
            labels=np.array(self.labels),
        )


def _as_names(labels: Sequence[Any], y: np.ndarray) -> list[str]:
    names = [str(x) for x in labels]
    return [names[int(i)] for i in y]


def _from_names(
    train_names: list[str],
    test_names: list[str],
    X_train: np.ndarray,
    X_test: np.ndarray,
    task: str,
    source: str,
) -> TaskData:
    labels = sorted(set(train_names))
    idx = {name: i for i, name in enumerate(labels)}
    y_train = np.array([idx[n] for n in train_names], dtype=np.int64)
    y_test = np.array([idx.get(n, -1) for n in test_names], dtype=np.int64)
    return TaskData(
        task=task,
        X_train=np.ascontiguousarray(X_train, dtype=np.float32),
        y_train=y_train,
        X_test=np.ascontiguousarray(X_test, dtype=np.float32),
        y_test=y_test,
        labels=labels,
        test_names=list(test_names),
        source=source,
    )


def load_task(task: str, layer: int, model: str, vectors_dir: Path | None, data_dir: Path | None) -> TaskData:
    """Vectors of ``task`` at hidden-state ``layer``: from ``tuneprobe.extract`` or, with ``vectors_dir``,
    from ``{task}_{train,test}.npz`` files holding ``X`` (float32 [n, d]), ``y`` and ``labels``."""
    if vectors_dir is not None:
        parts = []
        for split in ("train", "test"):
            z = np.load(vectors_dir / f"{task}_{split}.npz", allow_pickle=False)
            parts.append((z["X"], _as_names(list(z["labels"]), z["y"])))
        (Xtr, ntr), (Xte, nte) = parts
        return _from_names(ntr, nte, Xtr, Xte, task, f"npz:{vectors_dir}")

    import tuneprobe  # noqa: PLC0415

    extract: Callable[..., Any] = tuneprobe.extract  # type: ignore[attr-defined]
    reps = []
    for split in ("train", "test"):
        kwargs: dict[str, Any] = {
            "model": model,
            "split": split,
            "sentence_pooling": TASKS[task]["sentence_pooling"],
        }
        if data_dir is not None:
            kwargs["data_dir"] = data_dir
        try:
            r = extract(task, layers=[layer], **kwargs)
        except TypeError:
            r = extract(task, **kwargs)
        reps.append(r)
    tr, te = reps
    return _from_names(
        _as_names(tr.labels, np.asarray(tr.y)),
        _as_names(te.labels, np.asarray(te.y)),
        np.asarray(tr.layer(layer)),
        np.asarray(te.layer(layer)),
        task,
        f"tuneprobe.extract(model={model!r}, layer={layer}, meta={json.dumps(tr.meta, default=str)[:300]})",
    )


# -----------------------------------------------------------------------------------------------------------
# memory measurement shared by both workers


def _phase_marker(path: str) -> Callable[[str], None]:
    def mark(name: str) -> None:
        with open(path, "w") as f:
            f.write(name)

    return mark


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/children") as f:
            out.extend(int(x) for x in f.read().split())
    return out


def _tree(root: int) -> list[int]:
    todo, out = [root], []
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(_children(pid))
    return out


def _tree_rss_bytes(pids: list[int]) -> int:
    """Summed RSS (cheap; counts pages shared between processes once per process)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError), open(f"/proc/{pid}/statm") as f:
            total += int(f.read().split()[1]) * PAGE
    return total


CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """utime + stime of ``pid`` (all its threads) in seconds, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def _tree_pss_bytes(pids: list[int]) -> int:
    """Summed PSS (proportional set size: shared pages split between the processes that map them)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1]) * 1024
                        break
        except OSError:
            continue
    return total


@dataclasses.dataclass
class ChildRun:
    returncode: int | None
    wall_s: float
    timed_out: bool
    maxrss_bytes: int  # largest single process of the tree (wait4), as /usr/bin/time -v reports it
    tree_pss_peak_bytes: int  # sampled peak of the summed PSS of the process tree
    tree_rss_sum_peak_bytes: int  # sampled peak of the summed RSS (shared pages counted per process)
    tree_pss_peak_by_phase: dict[str, int]
    last_phase: str
    loadavg_1m_before: float
    # CPU seconds of the whole process tree by phase (sampled every poll: the CPU since the previous poll is
    # put on the phase seen now, and a process's CPU after its last poll is missed)
    tree_cpu_s_by_phase: dict[str, float] = dataclasses.field(default_factory=dict)


def run_child(
    cmd: list[str],
    env: dict[str, str],
    log: Path,
    phase_file: Path,
    timeout_s: float | None,
    poll_s: float = 1.0,
) -> ChildRun:
    """Run ``cmd`` in its own session, sample the process tree's memory per phase, kill it on timeout."""
    phase_file.write_text("start")
    load_before = os.getloadavg()[0]
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, env=env, stdout=logf, stderr=subprocess.STDOUT, start_new_session=True)
        t0 = time.perf_counter()
        peak = {"pss": 0, "rss": 0}
        by_phase: dict[str, int] = {}
        cpu_by_phase: dict[str, float] = {}
        cpu_seen: dict[int, float] = {}
        stop = threading.Event()
        state = {"phase": "start"}

        def sample() -> None:
            n = 0
            cpu_total = 0.0
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    state["phase"] = phase_file.read_text().strip() or state["phase"]
                pids = _tree(proc.pid)
                for pid in pids:
                    c = _cpu_seconds(pid)
                    if c is not None:
                        cpu_seen[pid] = max(c, cpu_seen.get(pid, 0.0))
                now = sum(cpu_seen.values())
                cpu_by_phase[state["phase"]] = cpu_by_phase.get(state["phase"], 0.0) + now - cpu_total
                cpu_total = now
                rss = _tree_rss_bytes(pids)
                peak["rss"] = max(peak["rss"], rss)
                # PSS is costly: take it every PSS_EVERY polls and whenever the RSS sum reaches a new peak
                if n % PSS_EVERY == 0 or rss >= peak["rss"]:
                    v = _tree_pss_bytes(pids)
                    peak["pss"] = max(peak["pss"], v)
                    by_phase[state["phase"]] = max(by_phase.get(state["phase"], 0), v)
                n += 1
                stop.wait(poll_s)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timed_out = False

        def kill() -> None:
            nonlocal timed_out
            timed_out = True
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout_s, kill) if timeout_s else None
        if timer:
            timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        except BaseException:  # interrupted (Ctrl-C, SIGTERM): do not leave the child's session running
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            stop.set()
            if timer:
                timer.cancel()
            raise
        wall = time.perf_counter() - t0
        if timer:
            timer.cancel()
        stop.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        # loky workers may outlive the driver for a moment; they belong to the child's session, which we
        # started
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(OSError):
        state["phase"] = phase_file.read_text().strip()
    return ChildRun(
        proc.returncode,
        wall,
        timed_out,
        ru.ru_maxrss * 1024,
        peak["pss"],
        peak["rss"],
        by_phase,
        state["phase"],
        load_before,
        cpu_by_phase,
    )


# -----------------------------------------------------------------------------------------------------------
# our side (runs in a subprocess: python bench/directprobe.py --_worker-ours WORKDIR)


def _hull_distances(X: np.ndarray, clustering: Any) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """([K, K] hull distances, [K, K] certified lower bounds or None, info) from tuneprobe's API; NaN where
    not computed (same-label pairs)."""
    from tuneprobe.directprobe import hulls  # noqa: PLC0415

    info: dict[str, Any] = {}
    if hasattr(hulls, "cluster_distances"):
        res = hulls.cluster_distances(X, clustering)
        info["n_unconverged"] = int(getattr(res, "n_unconverged", -1))
        info["rtol"] = getattr(res, "rtol", None)
        lower = getattr(res, "lower", None)
        return (
            np.asarray(res.distance, dtype=np.float64),
            None if lower is None else np.asarray(lower, dtype=np.float64),
            info,
        )
    return np.asarray(hulls.cluster_distance_matrix(X, clustering), dtype=np.float64), None, info


def _nearest_hull(
    X: np.ndarray, clustering: Any, X_test: np.ndarray
) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """(predicted label ids [m], point-to-cluster distances [m, K] or None, info) from tuneprobe's API."""
    from tuneprobe.directprobe.predict import nearest_hull_predict  # noqa: PLC0415

    res = nearest_hull_predict(X, clustering, X_test)
    if isinstance(res, tuple):
        pred, dist = res[0], (res[1] if len(res) > 1 else None)
        info: dict[str, Any] = {}
    else:
        pred = getattr(res, "labels", res)
        dist = getattr(res, "distances", None)
        info = {k: int(getattr(res, k)) for k in ("n_solved", "n_unconverged") if hasattr(res, k)}
        if hasattr(res, "n_tied"):
            info["n_points_tied"] = int((np.asarray(res.n_tied) > 1).sum())
    return (
        np.asarray(pred, dtype=np.int64),
        None if dist is None else np.asarray(dist, dtype=np.float64),
        info,
    )


def _hwm_reset() -> None:
    with contextlib.suppress(OSError), open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _hwm_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def worker_ours(work: Path) -> None:
    mark = _phase_marker(str(work / "phase"))
    cfg = json.loads((work / "ours_config.json").read_text())
    z = np.load(work / "input.npz")
    X, y, Xt = z["X_train"], z["y_train"], z["X_test"]
    labels = [str(s) for s in z["labels"]]
    result: dict[str, Any] = {"timings_s": {}, "hwm_bytes": {}}
    res_path = work / "ours_result.json"

    def dump() -> None:
        res_path.write_text(json.dumps(result, default=str))

    mark("import")
    t = time.perf_counter()
    try:
        from tuneprobe.directprobe import DirectProbe  # noqa: PLC0415
    except ImportError:  # not re-exported (yet)
        from tuneprobe.directprobe.cluster import DirectProbe  # noqa: PLC0415

    result["timings_s"]["import"] = time.perf_counter() - t

    mark("clustering")
    _hwm_reset()
    t = time.perf_counter()
    clustering = DirectProbe(**cfg.get("kwargs", {})).fit(X, y, label_names=labels)
    result["timings_s"]["clustering"] = time.perf_counter() - t
    result["hwm_bytes"]["clustering"] = _hwm_bytes()
    assignment = np.asarray(clustering.assignment, dtype=np.int64)
    cl_labels = np.asarray(clustering.cluster_labels, dtype=np.int64)
    result["n_clusters"] = int(clustering.n_clusters)
    result["stats"] = getattr(clustering, "stats", {})
    dump()

    mark("distances")
    _hwm_reset()
    t, c = time.perf_counter(), time.process_time()
    D, D_lower, info = _hull_distances(X, clustering)
    result["timings_s"]["distances"] = time.perf_counter() - t
    result["distances_cpu_s"] = time.process_time() - c
    result["hwm_bytes"]["distances"] = _hwm_bytes()
    result["distances_info"] = info
    # the same call again: the phase above includes one-off costs (numba's first-call initialisation and
    # the load of the compiled kernel, about 0.5 s CPU); this is the solver's own time
    t, c = time.perf_counter(), time.process_time()
    _hull_distances(X, clustering)
    result["distances_repeat_s"] = time.perf_counter() - t
    result["distances_repeat_cpu_s"] = time.process_time() - c
    dump()

    mark("prediction")
    _hwm_reset()
    t = time.perf_counter()
    pred, pdist, info = _nearest_hull(X, clustering, Xt)
    result["timings_s"]["prediction"] = time.perf_counter() - t
    result["hwm_bytes"]["prediction"] = _hwm_bytes()
    result["prediction_info"] = info
    mark("done")
    ru = resource.getrusage(resource.RUSAGE_SELF)
    result["maxrss_self_bytes"] = ru.ru_maxrss * 1024
    result["label_names"] = labels
    dump()
    arrays: dict[str, np.ndarray] = {
        "assignment": assignment,
        "cluster_labels": cl_labels,
        "D": D,
        "pred": pred,
    }
    if pdist is not None:
        arrays["point_dist"] = pdist
    if D_lower is not None:
        arrays["D_lower"] = D_lower
    np.savez(work / "ours_result.npz", **arrays)  # type: ignore[arg-type]


# -----------------------------------------------------------------------------------------------------------
# reference side: stub gurobipy, input files, config.ini and the driver, all generated in a temp dir at run
# time

GUROBIPY_STUB = '''\
"""Stub gurobipy (written by tuneprobe's bench): Model raises, so DirectProbe falls back to sklearn's SVC."""


class GurobiError(Exception):
    pass


class GRB:
    INFINITY = float("inf")
    CONTINUOUS = "C"
    MINIMIZE = 1
    OPTIMAL = 2


def Model(*args, **kwargs):
    raise GurobiError("gurobipy stub: no Gurobi here (bench/directprobe.py)")
'''

REFERENCE_CONFIG = """\
[run]
output_path = {work}/results/

[data]
common = {work}/data
label_set_path = ${{common}}/labels/tags.txt
entities_path = ${{common}}/entities/train.txt
embeddings_path = ${{common}}/embeddings/train.txt
test_entities_path = ${{common}}/entities/test.txt
test_embeddings_path = ${{common}}/embeddings/test.txt

[clustering]
enable_cuda = False
rate = {rate}
mode = probing
probing_cluster_path = {work}/results/
"""

# The driver follows main.probe() and main.prediction() of utahnlp/DirectProbe (main.py needs the ExAssist
# package only to hold the config and a result dict; here a flat namespace holds the config). It adds timers
# around the phases and counters around the overlap test, and saves the raw results with full precision.
REFERENCE_DRIVER = """\
\"\"\"Driver generated by tuneprobe's bench/directprobe.py; runs the reference DirectProbe phase by phase.

Only imports happen at module level: joblib's loky workers re-import this file as __mp_main__ (as they do the
reference's main.py, whose work is also under ``if __name__ == "__main__"``).
\"\"\"
import configparser
import json
import logging
import logging.config
import os
import resource
import sys
import time
import types

import numpy as np

_T0 = time.perf_counter()
import gurobipy  # the stub
import directprobe.logconfig as cfg
from directprobe import utils
from directprobe.analyzer import Analyzer
from directprobe.clusters import Cluster
from directprobe.config import Config
from directprobe.distanceQ import DistanceQ
from directprobe.probing import Probe
from directprobe.space import Space

_IMPORT_S = time.perf_counter() - _T0


def hwm_reset():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def hwm():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def main(work):
    result = {"timings_s": {"import": _IMPORT_S}, "hwm_bytes": {}, "counters": {}}
    result["gurobipy"] = gurobipy.__file__

    def mark(name):
        with open(os.path.join(work, "phase"), "w") as f:
            f.write(name)

    def dump():
        with open(os.path.join(work, "ref_result.json"), "w") as f:
            json.dump(result, f)

    cp = configparser.ConfigParser(interpolation=configparser.ExtendedInterpolation())
    cp.read(os.path.join(work, "config.ini"), encoding="utf8")
    flat = {k: v for s in cp.sections() for k, v in cp[s].items()}
    config = Config(types.SimpleNamespace(**flat))
    cfg.set_log_path(config.log_path)
    logging.config.dictConfig(cfg.LOGGING_CONFIG)
    result["device"] = str(config.device)
    result["rate"] = config.rate

    # the no-Gurobi path: Space picks hardSVM when gp.Model raises
    assert Space(config).solver is Space.hardSVM, "gurobipy stub not picked up: reference would use Gurobi"
    result["overlap_solver"] = "Space.hardSVM: SVC(linear, C=1e4, tol=1e-5, max_iter=5e5), standardised"

    # counters and timers (wrappers in this process only; behaviour unchanged)
    C = result["counters"]

    def wrap_timed(cls, name, extra=None):
        orig = getattr(cls, name)
        key = cls.__name__ + "." + name
        C[key + "_calls"] = 0
        C[key + "_s"] = 0.0

        def f(*a, **kw):
            t0 = time.perf_counter()
            try:
                return orig(*a, **kw)
            finally:
                C[key + "_calls"] += 1
                C[key + "_s"] += time.perf_counter() - t0
                if extra is not None:
                    extra(*a, **kw)

        setattr(cls, name, f)

    C["svm_overlap_tests"] = 0

    def count_tests(self, q, newcluster, indexs):
        C["svm_overlap_tests"] += len(indexs)

    wrap_timed(Space, "overlapping")
    wrap_timed(Space, "_lp_overlapping", count_tests)
    for name in ("probe_to_end", "_check_overlaps", "_find_coarse_range", "_find_first_error", "_forward"):
        wrap_timed(Probe, name)

    def loading(entities_path, embeddings_path):
        \"\"\"main.loading / main.load_test.\"\"\"
        entities = utils.load_entities(entities_path)
        labels = sorted(list(utils.load_labels(config.label_set_path)))
        label2idx = {labels[i]: i for i in range(len(labels))}
        annotations = np.array([label2idx[e.Label] for e in entities])
        embeddings = np.array(utils.load_embeddings(embeddings_path))
        assert len(embeddings) == len(annotations)
        return annotations, np.array(labels), embeddings, label2idx

    mark("load")
    t = time.perf_counter()
    annotations, labels, embeddings, label2idx = loading(config.entities_path, config.embeddings_path)
    test_ann, _, test_emb, _ = loading(config.test_entities_path, config.test_embeddings_path)
    result["timings_s"]["load"] = time.perf_counter() - t
    result["labels"] = labels.tolist()
    dump()

    # ---- main.probe (or a given partition: given_clusters.txt in the reference's clusters.txt format)
    given = os.path.join(work, "given_clusters.txt")
    if os.path.exists(given):
        with open(given) as src, open(config.cluster_path, "w") as dst:
            dst.write(src.read())
        result["clusters_given"] = True
        result["n_clusters"] = int(np.loadtxt(config.cluster_path, dtype=np.int64).max()) + 1
    else:
        mark("clustering")
        hwm_reset()
        t = time.perf_counter()
        probe = Probe(config)
        clusters = [Cluster([i], [label]) for i, label in enumerate(annotations)]
        q = DistanceQ(config, embeddings, clusters, len(labels))
        q = probe.probing(q)
        utils.write_clusters(config.cluster_path, q)
        result["timings_s"]["clustering"] = time.perf_counter() - t
        result["hwm_bytes"]["clustering"] = hwm()
        result["n_clusters"] = len(q)
    np.savez(
        os.path.join(work, "ref_clusters.npz"),
        assignment=np.loadtxt(config.cluster_path, dtype=np.int64).reshape(-1),
    )
    dump()

    # ---- main.prediction: rebuild the final clusters from clusters.txt
    mark("prediction_setup")
    t = time.perf_counter()
    clusters_indices = utils.load_clusters(config.cluster_path)
    labels_list = utils.assign_labels(clusters_indices, annotations)
    clusters = [Cluster(indices, labs) for indices, labs in zip(clusters_indices, labels_list)]
    q = DistanceQ(config, embeddings, clusters, len(labels))
    analyzer = Analyzer()
    idx2label = {v: k for k, v in label2idx.items()}
    result["timings_s"]["prediction_setup"] = time.perf_counter() - t
    K = len(q.clusters)

    # distances before prediction (main.prediction does the reverse): prediction is the slowest phase,
    # so a timeout then still leaves the distances to compare
    mark("distances")
    hwm_reset()
    t = time.perf_counter()
    diss, label_pairs = analyzer.convex2convex(q)
    result["timings_s"]["distances"] = time.perf_counter() - t
    result["hwm_bytes"]["distances"] = hwm()
    pairs = [(a, idx2label[la], b, idx2label[lb]) for a, la, b, lb in label_pairs]
    utils.write_convex_dis(config.dis_path, pairs, diss)
    D = np.full((K, K), np.nan)
    for (a, _, b, _), d in zip(label_pairs, diss):
        D[a, b] = D[b, a] = d
    np.savez(os.path.join(work, "ref_dist.npz"), D=D)
    dump()

    if os.path.exists(os.path.join(work, "skip_prediction")):
        mark("done")
        result["maxrss_self_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        cluster_labels = np.array([c.major_label for c in q.clusters], dtype=np.int64)
        assignment = np.loadtxt(config.cluster_path, dtype=np.int64).reshape(-1)
        np.savez(os.path.join(work, "ref_result.npz"), assignment=assignment,
                 cluster_labels=cluster_labels, D=D)
        dump()
        return

    mark("prediction")
    hwm_reset()
    t = time.perf_counter()
    acc, cluster_list = analyzer.predict(q, test_ann, test_emb)
    result["timings_s"]["prediction"] = time.perf_counter() - t
    result["hwm_bytes"]["prediction"] = hwm()
    result["acc"] = acc
    named, real = utils.map_to_label(idx2label, cluster_list, test_ann)
    utils.write_predictions(config.prediction_path, named, real)
    point_dist = np.full((len(test_ann), K), np.nan)
    pred = np.empty(len(test_ann), dtype=np.int64)
    for i, ranking in enumerate(cluster_list):
        pred[i] = ranking[0][1]
        for j, _, d in ranking:
            point_dist[i, j] = d
    np.savez(os.path.join(work, "ref_pred.npz"), pred=pred, point_dist=point_dist)
    dump()

    mark("done")

    assignment = np.loadtxt(config.cluster_path, dtype=np.int64).reshape(-1)
    cluster_labels = np.array([c.major_label for c in q.clusters], dtype=np.int64)
    result["maxrss_self_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    result["maxrss_children_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    np.savez(os.path.join(work, "ref_result.npz"), assignment=assignment, cluster_labels=cluster_labels, D=D,
             pred=pred, point_dist=point_dist)
    dump()


if __name__ == "__main__":
    main(sys.argv[1])
"""


def write_reference_inputs(data: TaskData, work: Path, rate: float) -> None:
    """The reference's inputs: entities (``entity<TAB>label`` per line), the label set, and one vector per
    line (``%.9g`` round-trips float32 exactly), plus ``config.ini``."""
    d = work / "data"
    for sub in ("labels", "entities", "embeddings"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    # test labels unseen in train still have to be in the label set (the reference maps every label to an id)
    all_labels = sorted(set(data.labels) | set(data.test_names))
    (d / "labels" / "tags.txt").write_text("".join(f"{lab}\n" for lab in all_labels))
    for split, X, names in (
        ("train", data.X_train, [data.labels[i] for i in data.y_train]),
        ("test", data.X_test, data.test_names),
    ):
        (d / "entities" / f"{split}.txt").write_text(
            "".join(f"{split}-{i}\t{n}\n" for i, n in enumerate(names))
        )
        np.savetxt(d / "embeddings" / f"{split}.txt", X.astype(np.float32), fmt="%.9g")
    (work / "config.ini").write_text(REFERENCE_CONFIG.format(work=work, rate=rate))
    stub = work / "stub"
    stub.mkdir(exist_ok=True)
    (stub / "gurobipy.py").write_text(GUROBIPY_STUB)
    (work / "driver.py").write_text(REFERENCE_DRIVER)


# -----------------------------------------------------------------------------------------------------------
# comparison


def canonical(assignment: np.ndarray) -> np.ndarray:
    """Relabel clusters 0..K-1 in order of their smallest member index."""
    _, first = np.unique(assignment, return_index=True)
    order = np.argsort(first)
    remap = np.empty(assignment.max() + 1, dtype=np.int64)
    remap[np.unique(assignment)[order]] = np.arange(len(order))
    return remap[assignment]


def remap_matrix(assignment: np.ndarray, D: np.ndarray) -> np.ndarray:
    """Reorder a [K, K] cluster matrix to the canonical cluster numbering of ``assignment``."""
    _, first = np.unique(assignment, return_index=True)
    order = np.unique(assignment)[np.argsort(first)]
    return D[np.ix_(order, order)]


def separable_lp(A: np.ndarray, B: np.ndarray) -> tuple[bool, int, str]:
    """Exact test (HiGHS): is there (w, b) with w·a + b >= 1 on A and w·x + b <= -1 on B? float64."""
    from scipy.optimize import linprog  # noqa: PLC0415

    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    d = A.shape[1]
    A_ub = np.vstack([np.hstack([-A, -np.ones((len(A), 1))]), np.hstack([B, np.ones((len(B), 1))])])
    b_ub = -np.ones(len(A) + len(B))
    r = linprog(np.zeros(d + 1), A_ub=A_ub, b_ub=b_ub, bounds=[(None, None)] * (d + 1), method="highs")
    if r.status not in (0, 2):
        return False, int(r.status), r.message
    return r.status == 0, int(r.status), r.message


def _sphere_candidate(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> bool:
    ca, cb = X[a].mean(0), X[b].mean(0)
    ra = np.linalg.norm(X[a] - ca, axis=1).max()
    rb = np.linalg.norm(X[b] - cb, axis=1).max()
    return bool(np.linalg.norm(ca - cb) <= ra + rb + 1e-9)


def audit_partition(
    X: np.ndarray, y: np.ndarray, assign: np.ndarray, other: np.ndarray, budget_s: float
) -> dict[str, Any]:
    """Exact LP audit of one side's partition ``assign`` where it differs from ``other``.

    * overlaps: pairs of different-label clusters (at least one of them not in the other partition) whose
      hulls intersect: the result breaks criterion 2.
    * feasible refused merges: pairs of same-label clusters that both meet one cluster of the other
      partition, whose union overlaps no different-label cluster: G (and the reference's forward loop,
      which runs until the queue is empty) would have merged them.
    """
    X = X.astype(np.float64)
    t_end = time.perf_counter() + budget_s
    members = {k: np.flatnonzero(assign == k) for k in np.unique(assign)}
    other_members = {k: np.flatnonzero(other == k) for k in np.unique(other)}
    other_sets = {frozenset(v.tolist()) for v in other_members.values()}
    lab = {k: int(y[v[0]]) for k, v in members.items()}
    differing = [k for k, v in members.items() if frozenset(v.tolist()) not in other_sets]
    out: dict[str, Any] = {
        "n_clusters": len(members),
        "n_differing_clusters": len(differing),
        "lp_calls": 0,
        "overlapping_pairs": [],
        "feasible_refused_merges": [],
        "lp_failures": 0,
        "complete": True,
    }

    def lp(a: np.ndarray, b: np.ndarray) -> bool | None:
        if time.perf_counter() > t_end:
            out["complete"] = False
            return None
        out["lp_calls"] += 1
        ok, status, _ = separable_lp(X[a], X[b])
        if status not in (0, 2):
            out["lp_failures"] += 1
            return None
        return ok

    # 1. overlaps among the differing clusters and everything else
    diff_set = set(differing)
    for k in differing:
        for k2 in members:
            if k2 == k or lab[k2] == lab[k] or (k2 in diff_set and k2 < k):
                continue
            if not _sphere_candidate(X, members[k], members[k2]):
                continue
            sep = lp(members[k], members[k2])
            if sep is False:
                out["overlapping_pairs"].append([int(k), int(k2)])
    # 2. same-label clusters that the other side puts (partly) together
    owner = other
    for k in differing:
        for k2 in differing:
            if k2 <= k or lab[k2] != lab[k]:
                continue
            if not set(owner[members[k]].tolist()) & set(owner[members[k2]].tolist()):
                continue
            union = np.concatenate([members[k], members[k2]])
            clean = True
            for k3 in members:
                if lab[k3] == lab[k] or not _sphere_candidate(X, union, members[k3]):
                    continue
                sep = lp(union, members[k3])
                if sep is None:
                    clean = False  # unknown: do not claim it was feasible
                    break
                if not sep:
                    clean = False
                    break
            if clean:
                out["feasible_refused_merges"].append([int(k), int(k2)])
    return out


def label_pair_stats(D: np.ndarray, cl_labels: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """[n_labels, n_labels] mean and min of the cluster-pair hull distances per label pair (NaN if none)."""
    mean = np.full((n_labels, n_labels), np.nan)
    mn = np.full((n_labels, n_labels), np.nan)
    for i in range(n_labels):
        ci = np.flatnonzero(cl_labels == i)
        for j in range(i + 1, n_labels):
            cj = np.flatnonzero(cl_labels == j)
            if len(ci) == 0 or len(cj) == 0:
                continue
            block = D[np.ix_(ci, cj)]
            if np.all(np.isnan(block)):
                continue
            mean[i, j] = mean[j, i] = np.nanmean(block)
            mn[i, j] = mn[j, i] = np.nanmin(block)
    return mean, mn


def compare_values(
    a: np.ndarray, b: np.ndarray, names: list[str], b_lower: np.ndarray | None = None
) -> dict[str, Any]:
    """Relative agreement of reference distances ``a`` and ours ``b`` (NaNs ignored where either is NaN).

    With ``b_lower`` (our certified lower bounds; ``b`` is attained by two hull points, so it is an upper
    bound) the true distance lies in ``[b_lower, b]``: a reference value below ``b_lower`` (by more than the
    1e-3 tolerance) is provably too small (its SVC hyperplane is not the max-margin one, or it declared an
    overlap); one above ``b`` would mean our solver is wrong.
    """
    a = a.ravel()
    b = b.ravel()
    ok = ~(np.isnan(a) | np.isnan(b))
    nm = [n for n, k in zip(names, ok, strict=True) if k]
    lo = None if b_lower is None else b_lower.ravel()[ok]
    a, b = a[ok], b[ok]
    scale = np.maximum(np.abs(a), np.abs(b))
    rel = np.where(scale < ABS_TOL, 0.0, np.abs(a - b) / np.where(scale < ABS_TOL, 1.0, scale))
    worst = np.argsort(-rel)[:5]
    out: dict[str, Any] = {
        "n": int(len(a)),
        "within_rel_1e-3": int((rel <= REL_TOL).sum()),
        "max_rel_diff": float(rel.max()) if len(rel) else 0.0,
        "median_rel_diff": float(np.median(rel)) if len(rel) else 0.0,
        "ref_smaller": int((a < b - ABS_TOL).sum()),
        "ref_zero_ours_positive": int(((a <= ABS_TOL) & (b > ABS_TOL)).sum()),
        "worst": [
            {"pair": nm[i], "reference": float(a[i]), "ours": float(b[i]), "rel": float(rel[i])}
            | ({} if lo is None else {"ours_lower": float(lo[i])})
            for i in worst
            if rel[i] > REL_TOL
        ],
    }
    if lo is not None:
        # beyond the 1e-3 tolerance only: within it, the SVC's own tolerance explains the difference
        out["ref_below_our_certified_lower"] = int((a < lo * (1 - REL_TOL) - ABS_TOL).sum())
        out["ref_above_our_upper"] = int((a > b * (1 + REL_TOL) + ABS_TOL).sum())
        out["our_max_certified_rel_gap"] = float(
            np.max(np.where(b > ABS_TOL, (b - lo) / np.where(b > ABS_TOL, b, 1.0), 0.0), initial=0.0)
        )
    return out


def compare(data: TaskData, ref: dict[str, Any], ours: dict[str, Any], lp_budget_s: float) -> dict[str, Any]:
    """Agreement of the parts both sides produced (partition, hull distances, prediction)."""
    labels = data.labels
    L = len(labels)
    out: dict[str, Any] = {}
    # the reference numbers labels over sorted(train + test labels): map its ids to ours by name
    idx = {n: i for i, n in enumerate(labels)}
    ref_ids = np.array([idx.get(n, -1) for n in ref.get("labels", labels)], dtype=np.int64)
    if "assignment" in ref and "assignment" in ours:
        ra, oa = canonical(ref["assignment"]), canonical(ours["assignment"])
        out["same_partition"] = bool(np.array_equal(ra, oa))
        out["n_clusters"] = {"reference": int(ra.max() + 1), "ours": int(oa.max() + 1)}
        from sklearn.metrics import adjusted_rand_score  # noqa: PLC0415

        out["adjusted_rand"] = float(adjusted_rand_score(ra, oa))
        rset = {frozenset(np.flatnonzero(ra == k).tolist()) for k in range(ra.max() + 1)}
        oset = {frozenset(np.flatnonzero(oa == k).tolist()) for k in range(oa.max() + 1)}
        out["identical_clusters"] = len(rset & oset)
        if not out["same_partition"]:
            print("    partitions differ: exact LP audit ...", flush=True)
            out["lp_audit"] = {
                "reference": audit_partition(data.X_train, data.y_train, ra, oa, lp_budget_s / 2),
                "ours": audit_partition(data.X_train, data.y_train, oa, ra, lp_budget_s / 2),
            }

        if "D" in ref and "D" in ours:
            # reference D is indexed by its cluster ids, ours by its own: bring both to canonical numbering
            Dr = remap_matrix(ref["assignment"], ref["D"])
            Do = remap_matrix(ours["assignment"], ours["D"])
            Dl = remap_matrix(ours["assignment"], ours["D_lower"]) if "D_lower" in ours else None
            lr = np.array([data.y_train[np.flatnonzero(ra == k)[0]] for k in range(ra.max() + 1)])
            lo = np.array([data.y_train[np.flatnonzero(oa == k)[0]] for k in range(oa.max() + 1)])
            if out["same_partition"]:
                iu = np.triu_indices(len(lr), 1)
                diff = lr[iu[0]] != lr[iu[1]]
                names = [
                    f"c{i}:{labels[lr[i]]}|c{j}:{labels[lr[j]]}"
                    for i, j in zip(iu[0][diff], iu[1][diff], strict=True)
                ]
                out["cluster_pair_distances"] = compare_values(
                    Dr[iu][diff], Do[iu][diff], names, None if Dl is None else Dl[iu][diff]
                )
            mr, nr = label_pair_stats(Dr, lr, L)
            mo, no = label_pair_stats(Do, lo, L)
            ml, nl = label_pair_stats(Dl, lo, L) if Dl is not None else (None, None)
            iu = np.triu_indices(L, 1)
            names = [f"{labels[i]}|{labels[j]}" for i, j in zip(*iu, strict=True)]
            out["label_pair_mean_distances"] = compare_values(
                mr[iu], mo[iu], names, None if ml is None else ml[iu]
            )
            out["label_pair_min_distances"] = compare_values(
                nr[iu], no[iu], names, None if nl is None else nl[iu]
            )

    if "pred" in ref and "pred" in ours:
        yt = data.y_test
        rp = ref_ids[ref["pred"]]
        out["prediction"] = {
            "acc_reference": float((rp == yt).mean()),
            "acc_ours": float((ours["pred"] == yt).mean()),
            "same_label": float((rp == ours["pred"]).mean()),
        }
    return out


# -----------------------------------------------------------------------------------------------------------
# driver


def _load_side(work: Path, prefix: str) -> dict[str, Any] | None:
    js = work / f"{prefix}_result.json"
    if not js.exists():
        return None
    res: dict[str, Any] = json.loads(js.read_text())
    for name in (
        f"{prefix}_clusters.npz",
        f"{prefix}_dist.npz",
        f"{prefix}_pred.npz",
        f"{prefix}_result.npz",
    ):
        npz = work / name
        if npz.exists():
            with np.load(npz) as z:
                for k in z.files:
                    res[k] = z[k]
    return res


def run_reference(
    data: TaskData, args: argparse.Namespace, work: Path, logs: Path, given: np.ndarray | None = None
) -> dict[str, Any]:
    """Run the reference on ``data``. given: a partition (cluster id per train row) the reference takes
    instead of clustering (``--reference-clusters``): its distance phase (and prediction) is timed on it."""
    write_reference_inputs(data, work, args.reference_rate)
    for name in ("given_clusters.txt", "skip_prediction"):
        (work / name).unlink(missing_ok=True)
    if given is not None:
        (work / "given_clusters.txt").write_text("".join(f"{int(c)}\n" for c in given))
    if args.reference_skip_prediction:
        (work / "skip_prediction").write_text("1\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(work / "stub"), str(args.reference_dir)])
    env.pop("CUDA_VISIBLE_DEVICES", None)
    env["CUDA_VISIBLE_DEVICES"] = ""  # the reference's GPU flag is always on; keep it on the CPU like ours
    run = run_child(
        [str(args.reference_python), str(work / "driver.py"), str(work)],
        env,
        logs / f"{data.task}.reference.log",
        work / "phase",
        _timeout_for(args.reference_timeout, data.task),
    )
    res = _load_side(work, "ref") or {"timings_s": {}}
    res["run"] = dataclasses.asdict(run)
    res["loadavg_1m_after"] = os.getloadavg()[0]
    _mark_timeout(res, run)
    if run.returncode != 0 and not run.timed_out:
        res["failed"] = f"exit {run.returncode}; see {logs / (data.task + '.reference.log')}"
    return res


def run_ours(data: TaskData, args: argparse.Namespace, work: Path, logs: Path) -> dict[str, Any]:
    kwargs = {"progress": False, **json.loads(args.ours_kwargs)}
    (work / "ours_config.json").write_text(json.dumps({"kwargs": kwargs}))
    env = dict(os.environ)
    run = run_child(
        [sys.executable, str(Path(__file__).resolve()), "--_worker-ours", str(work)],
        env,
        logs / f"{data.task}.ours.log",
        work / "phase",
        args.ours_timeout,
    )
    res = _load_side(work, "ours") or {"timings_s": {}}
    res["run"] = dataclasses.asdict(run)
    res["loadavg_1m_after"] = os.getloadavg()[0]
    _mark_timeout(res, run)
    if run.returncode != 0 and not run.timed_out:
        res["failed"] = f"exit {run.returncode}; see {logs / (data.task + '.ours.log')}"
    return res


def _mark_timeout(res: dict[str, Any], run: ChildRun) -> None:
    if run.timed_out:
        t_done = sum(float(v) for v in res["timings_s"].values())
        res["timed_out_in"] = run.last_phase
        res["timed_out_phase_elapsed_s"] = max(0.0, run.wall_s - t_done)


def _mb(b: float | None) -> str:
    return "-" if not b else f"{b / 2**20:,.0f} MB"


def _s(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.1f} s" if x >= 10 else f"{x:.3f} s")


def _peak(side: dict[str, Any] | None, key: str) -> float | None:
    """A side's peak memory. The per-phase VmHWM resets (/proc/self/clear_refs) also reset the counter that
    wait4 reports, so the largest process's peak is the max of wait4's value and the per-phase peaks."""
    if not side or "run" not in side:
        return None
    v = side["run"].get(key)
    if key == "maxrss_bytes":
        v = max([v or 0, *[int(x) for x in side.get("hwm_bytes", {}).values()]])
    return v


def _ratio(x: float) -> str:
    return f"{x:,.0f}x" if x >= 10 else f"{x:.2f}x"


def phase_time(side: dict[str, Any] | None, phase: str) -> tuple[float | None, bool]:
    """(seconds, is_lower_bound) of a phase; a phase cut by the timeout gives its elapsed time as a lower
    bound."""
    if side is None:
        return None, False
    t = side.get("timings_s", {}).get(phase)
    if t is not None:
        return float(t), False
    if side.get("timed_out_in") == phase:
        return float(side["timed_out_phase_elapsed_s"]), True
    return None, False


def summarize(results: dict[str, Any]) -> str:
    lines: list[str] = []
    for task, r in results["tasks"].items():
        ref, ours = r.get("reference"), r.get("ours")
        lines.append(
            f"\n## {task}  (train {r['n_train']} x {r['dim']}, test {r['n_test']}, {r['n_labels']} labels)\n"
        )
        lines.append("| phase | reference | ours | ratio | target |")
        lines.append("|---|---|---|---|---|")
        for ph in PHASES:
            tr, lb_r = phase_time(ref, ph)
            to, lb_o = phase_time(ours, ph)
            ratio = "-"
            if tr is not None and to and not (lb_r and lb_o):
                ratio = f"{'>= ' if lb_r else '<= ' if lb_o else ''}{_ratio(tr / to)}"
            tr_s = ("> " if lb_r else "") + _s(tr) if tr is not None else "-"
            to_s = ("> " if lb_o else "") + _s(to) if to is not None else "-"
            lines.append(f"| {ph} | {tr_s} | {to_s} | {ratio} | >= {TARGETS[ph]:.0f}x |")
        for name, key in (
            ("peak RSS, largest process", "maxrss_bytes"),
            ("peak PSS, whole process tree", "tree_pss_peak_bytes"),
        ):
            vr, vo = _peak(ref, key), _peak(ours, key)
            lines.append(f"| {name} | {_mb(vr)} | {_mb(vo)} | | |")
        for side_name, side in (("reference", ref), ("ours", ours)):
            if side is None:
                continue
            if "failed" in side:
                lines.append(f"\n{side_name}: FAILED ({side['failed']})")
            if side.get("timed_out_in"):
                lines.append(
                    f"\n{side_name}: TIMED OUT in phase {side['timed_out_in']} after "
                    f"{side['run']['wall_s']:.0f} s (its time for that phase is a lower bound)"
                )
        ref_cpu = ((ref or {}).get("run") or {}).get("tree_cpu_s_by_phase", {}).get("distances")
        if ref_cpu is not None and ours and "distances_cpu_s" in ours:
            lines.append(
                f"\n- CPU time of the hull-distance phase: reference {_s(ref_cpu)} (its whole process tree, "
                f"sampled every second), ours {_s(ours['distances_cpu_s'])} (process time): "
                f"{_ratio(ref_cpu / max(ours['distances_cpu_s'], 1e-9))}"
            )
        if ours and "distances_repeat_s" in ours:
            lines.append(
                f"\n- ours, hull-distance matrix computed again in the same process (no one-off start-up "
                f"costs): {_s(ours['distances_repeat_s'])} wall, {_s(ours['distances_repeat_cpu_s'])} CPU"
            )
        ncl = [
            f"{n} {side['n_clusters']}"
            for n, side in (("reference", ref), ("ours", ours))
            if side and "n_clusters" in side
        ]
        if ncl:
            lines.append(f"\n- clusters ({r['n_labels']} labels): " + ", ".join(ncl))
        c = r.get("comparison") or {}
        if ref and ref.get("clusters_given"):
            lines.append(
                f"- the reference was given a partition ({ref['clusters_given']}) instead of clustering: its "
                "distance and prediction phases ran on it, so the partitions agree by construction"
            )
        if "same_partition" in c:
            lines.append(
                f"- same partition up to relabelling: {c['same_partition']} (ARI {c['adjusted_rand']:.4f}, "
                f"{c['identical_clusters']} identical clusters)"
            )
        for side_name, a in c.get("lp_audit", {}).items():
            lines.append(
                f"- exact LP audit of {side_name}'s clusters that the other side lacks "
                f"({a['n_differing_clusters']}): {len(a['overlapping_pairs'])} overlapping different-label "
                f"pairs, "
                f"{len(a['feasible_refused_merges'])} feasible same-label merges left undone "
                f"({a['lp_calls']} LPs{'; INCOMPLETE (budget)' if not a['complete'] else ''})"
            )
        for key in ("cluster_pair_distances", "label_pair_mean_distances", "label_pair_min_distances"):
            if key in c:
                v = c[key]
                extra = ""
                if "ref_below_our_certified_lower" in v:
                    extra = (
                        f"; reference below our certified lower bound in "
                        f"{v['ref_below_our_certified_lower']}, "
                        f"above our value in {v['ref_above_our_upper']}"
                    )
                lines.append(
                    f"- {key.replace('_', ' ')}: {v['within_rel_1e-3']}/{v['n']} within 1e-3 relative "
                    f"(max rel diff {v['max_rel_diff']:.2e}; reference 0 where ours > 0: "
                    f"{v['ref_zero_ours_positive']}{extra})"
                )
        if "prediction" in c:
            p = c["prediction"]
            lines.append(
                f"- nearest-hull accuracy on test: reference {p['acc_reference']:.4f}, "
                f"ours {p['acc_ours']:.4f}; "
                f"same predicted label for {100 * p['same_label']:.1f}% of test points"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--tasks", default="ps-role,trec50", help="comma-separated, from: " + ", ".join(TASKS))
    p.add_argument("--layer", type=int, default=6)
    p.add_argument("--model", default="default")
    p.add_argument(
        "--reference-dir",
        type=Path,
        default=os.environ.get("DIRECTPROBE_REF_DIR"),
        help="checkout of utahnlp/DirectProbe (or $DIRECTPROBE_REF_DIR)",
    )
    p.add_argument(
        "--reference-python",
        type=Path,
        default=os.environ.get("DIRECTPROBE_REF_PYTHON"),
        help="python of a venv with the reference's requirements (or $DIRECTPROBE_REF_PYTHON)",
    )
    p.add_argument(
        "--reference-timeout",
        default="2400",
        help="seconds per task for the reference, one number or TASK=SECONDS,... (default 2400); a "
        "timed-out phase's elapsed time is reported as a lower bound",
    )
    p.add_argument(
        "--reference-rate", type=float, default=0.01, help="the reference's coarse-search rate (config)"
    )
    p.add_argument(
        "--reference-clusters",
        default=None,
        metavar="ours|FILE",
        help="give the reference a partition instead of running its clustering (about 10 min on ps-role): "
        "'ours' (our side's partition, which equals the reference's on ps-role) or a clusters.txt (one "
        "cluster id per train row, e.g. results/clusters.txt of a --keep-workdir run); its distance "
        "phase (and prediction) is then timed on that partition",
    )
    p.add_argument(
        "--reference-skip-prediction",
        action="store_true",
        help="stop the reference after its hull-distance phase (its prediction takes > 40 min on ps-role)",
    )
    p.add_argument("--ours-only", action="store_true", help="skip the reference")
    p.add_argument(
        "--reference-only", action="store_true", help="skip our side (e.g. while it is being written)"
    )
    p.add_argument("--ours-kwargs", default="{}", help="JSON kwargs for tuneprobe's DirectProbe(...)")
    p.add_argument("--ours-timeout", type=float, default=None)
    p.add_argument(
        "--vectors-dir",
        type=Path,
        default=None,
        help="use {task}_{train,test}.npz (X, y, labels) instead of tuneprobe.extract",
    )
    p.add_argument(
        "--lp-budget",
        type=float,
        default=600.0,
        help="seconds per task for the exact LP audit when the partitions differ",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=_default_data_dir(),
        help="corpora for tuneprobe.extract (default: $TUNEPROBE_DATA, else ../shared/data next to the repo)",
    )
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument(
        "--keep-workdir", action="store_true", help="keep the temp dirs (reference inputs and outputs)"
    )
    p.add_argument(
        "--summarize",
        type=Path,
        default=None,
        metavar="JSON",
        help="re-render the tables of a saved result (bench/out/directprobe-*.json) and exit",
    )
    p.add_argument("--_worker-ours", dest="worker_ours", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    signal.signal(signal.SIGTERM, _sigterm)
    if args.worker_ours is not None:
        worker_ours(args.worker_ours)
        return 0
    if args.summarize is not None:
        results = json.loads(args.summarize.read_text())
        for r in results["tasks"].values():
            for side in (r.get("reference"), r.get("ours")):
                if side and side.get("run", {}).get("timed_out") and "timed_out_in" not in side:
                    side.pop("failed", None)
                    run = ChildRun(**side["run"])
                    _mark_timeout(side, run)
        summary = summarize(results)
        print(summary)
        args.summarize.with_suffix(".md").write_text(
            f"# DirectProbe bench {results['when']}\n\n`{results['command']}`\n" + summary + "\n"
        )
        return 0

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    for t in tasks:
        if t not in TASKS:
            p.error(f"unknown task {t!r}")
    use_ref = not args.ours_only
    use_ours = not args.reference_only
    if use_ref:
        if not args.reference_dir or not (Path(args.reference_dir) / "directprobe" / "probing.py").exists():
            p.error(
                "--reference-dir must point at a checkout of utahnlp/DirectProbe (see bench/README.md), "
                "or pass --ours-only"
            )
        if not args.reference_python or not Path(args.reference_python).exists():
            p.error("--reference-python must be the python of a venv with the reference's requirements")
        args.reference_dir = Path(args.reference_dir).resolve()

    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir: Path = args.out
    logs = out_dir / f"logs-{stamp}"
    logs.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "when": stamp,
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "reference": {
            "dir": str(args.reference_dir),
            "python": str(args.reference_python),
            "commit": _git_head(args.reference_dir) if use_ref else None,
        },
        "tasks": {},
    }
    # ours first on every task (quick; the code measured is the tree as it is when the run starts), then the
    # reference task by task, each followed by the comparison
    with contextlib.ExitStack() as stack:
        datas: dict[str, TaskData] = {}
        works: dict[str, Path] = {}
        for task in tasks:
            print(f"[{task}] preparing vectors (layer {args.layer})", flush=True)
            data = load_task(task, args.layer, args.model, args.vectors_dir, args.data_dir)
            datas[task] = data
            works[task] = stack.enter_context(_workdir(task, args.keep_workdir))
            data.save(works[task] / "input.npz")
            results["tasks"][task] = {
                "n_train": len(data.y_train),
                "n_test": len(data.y_test),
                "dim": data.X_train.shape[1],
                "n_labels": len(data.labels),
                "source": data.source,
            }
        if use_ours:
            for task in tasks:
                print(f"[{task}] ours ...", flush=True)
                results["tasks"][task]["ours"] = run_ours(datas[task], args, works[task], logs)
                _print_side("ours", results["tasks"][task]["ours"])
                _write(out_dir, stamp, results)
        for task in tasks:
            r = results["tasks"][task]
            if use_ref:
                tmo = _timeout_for(args.reference_timeout, task)
                print(f"[{task}] reference (timeout {tmo:.0f} s) ...", flush=True)
                given = None
                if args.reference_clusters == "ours":
                    if "assignment" not in (r.get("ours") or {}):
                        p.error("--reference-clusters ours needs our side's partition (do not skip our side)")
                    given = np.asarray(r["ours"]["assignment"], dtype=np.int64)
                elif args.reference_clusters:
                    given = np.loadtxt(args.reference_clusters, dtype=np.int64).reshape(-1)
                r["reference"] = run_reference(datas[task], args, works[task], logs, given)
                if given is not None:
                    r["reference"]["clusters_given"] = args.reference_clusters
                _print_side("reference", r["reference"])
            ref, ours = r.get("reference"), r.get("ours")
            if ref and ours:
                print(f"[{task}] comparing ...", flush=True)
                r["comparison"] = compare(datas[task], ref, ours, args.lp_budget)
            _write(out_dir, stamp, results)
            (out_dir / f"directprobe-{stamp}.md").write_text(
                f"# DirectProbe bench {stamp}\n\n`{results['command']}`\n" + summarize(results) + "\n"
            )
        for r in results["tasks"].values():
            for key in ("reference", "ours"):
                for k in ARRAY_KEYS:
                    (r.get(key) or {}).pop(k, None)
        _write(out_dir, stamp, results)

    summary = summarize(results)
    print(summary)
    (out_dir / f"directprobe-{stamp}.md").write_text(
        f"# DirectProbe bench {stamp}\n\n`{results['command']}`\n" + summary + "\n"
    )
    print(f"\nwrote {out_dir / f'directprobe-{stamp}.json'} and .md; logs in {logs}")
    return 0


def _timeout_for(spec: str, task: str) -> float | None:
    """``"2400"`` -> 2400 for every task; ``"ps-role=3600,trec50=1800"`` -> per task (None: no limit)."""
    if "=" not in spec:
        return float(spec) if float(spec) > 0 else None
    for part in spec.split(","):
        name, _, val = part.partition("=")
        if name.strip() == task:
            return float(val)
    return None


def _default_data_dir() -> Path | None:
    if os.environ.get("TUNEPROBE_DATA"):
        return Path(os.environ["TUNEPROBE_DATA"])
    d = REPO.parent / "shared" / "data"
    return d if d.is_dir() else None


def _sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _print_side(name: str, side: dict[str, Any]) -> None:
    t = side.get("timings_s", {})
    msg = ", ".join(f"{k} {v:.3f} s" for k, v in t.items())
    print(
        f"    {name}: {msg}; peak RSS {_mb(_peak(side, 'maxrss_bytes'))}, "
        f"tree PSS {_mb(side['run']['tree_pss_peak_bytes'])}"
        + (f"; FAILED {side['failed']}" if "failed" in side else "")
        + (f"; TIMED OUT in {side['timed_out_in']}" if side.get("timed_out_in") else ""),
        flush=True,
    )


def _git_head(d: Path | None) -> str | None:
    if d is None:
        return None
    try:
        return subprocess.run(
            ["git", "-C", str(d), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


@contextlib.contextmanager
def _workdir(task: str, keep: bool) -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix=f"tuneprobe-bench-{task}-"))
    try:
        yield d
    finally:
        if keep:
            print(f"    workdir kept: {d}", flush=True)
        else:
            shutil.rmtree(d, ignore_errors=True)


def _write(out_dir: Path, stamp: str, results: dict[str, Any]) -> None:
    """Write the JSON result; arrays (cluster assignments, distance matrices) are left out."""

    def default(o: Any) -> Any:
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o)
        if isinstance(o, np.ndarray):
            return None
        return str(o)

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in ARRAY_KEYS or not isinstance(v, np.ndarray)}
        return x

    (out_dir / f"directprobe-{stamp}.json").write_text(json.dumps(clean(results), indent=1, default=default))


if __name__ == "__main__":
    sys.exit(main())
