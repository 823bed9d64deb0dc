"""Classifier probes (PAPER.md section 5): estimators, the paper's grid search, tidy result rows.

- :class:`LinearProbe`, :class:`MLPProbe`: ``fit(X, y)`` / ``predict(X)`` / ``score(X, y)`` on float32
  ``[n_examples, dim]`` matrices, scikit-learn ``MLPClassifier`` semantics, trained in torch.
- :class:`ProbeSearch` / :func:`probe_search`: 128 configurations trained as 16 batched models (one per
  hidden-size group, spread over the cores), selection on dev (or a stratified 10 % hold-out), five seeded
  refits, mean and population std of test accuracy. By default each fit uses the random numbers of
  ``MLPClassifier(random_state=seed)`` and follows its trajectory.
- :func:`probe_representations`: the same on :class:`~tuneprobe.store.Representations`, returning tidy rows.
- :func:`probe_task`: the same on a task's cached representations of a model or fine-tuning snapshot
  (:func:`resolve_model`); what ``tuneprobe probe TASK --model M [--snapshot S] [--layer L]`` runs.
- On a GPU the batched loops use the padded layout (every configuration of a loop in one zero-padded network
  per layer, so a step is a few kernels); on CPU the grouped one (see :mod:`tuneprobe.probes._train`).


Names are imported lazily, so ``import tuneprobe.probes`` (e.g. by the CLI) does not load torch.
"""

from __future__ import annotations

from tuneprobe._lazy import lazy_exports

_EXPORTS = {
    "FittedNet": "tuneprobe.probes._train",
    "NetConfig": "tuneprobe.probes._train",
    "TrainSettings": "tuneprobe.probes._train",
    "train_nets": "tuneprobe.probes._train",
    "LinearProbe": "tuneprobe.probes.estimators",
    "MLPProbe": "tuneprobe.probes.estimators",
    "PAPER_ALPHAS": "tuneprobe.probes.search",
    "PAPER_HIDDEN_SIZES": "tuneprobe.probes.search",
    "PAPER_SEEDS": "tuneprobe.probes.search",
    "GridPoint": "tuneprobe.probes.search",
    "ProbeSearch": "tuneprobe.probes.search",
    "ProbeSearchResult": "tuneprobe.probes.search",
    "probe_representations": "tuneprobe.probes.search",
    "probe_search": "tuneprobe.probes.search",
    "stratified_holdout": "tuneprobe.probes.search",
    "ModelRef": "tuneprobe.probes.task",
    "TaskProbe": "tuneprobe.probes.task",
    "probe_task": "tuneprobe.probes.task",
    "resolve_model": "tuneprobe.probes.task",
}

__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
