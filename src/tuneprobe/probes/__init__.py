"""Classifier probes (PAPER.md section 5): estimators, the paper's grid search, tidy result rows.

- :class:`LinearProbe`, :class:`MLPProbe`: ``fit(X, y)`` / ``predict(X)`` / ``score(X, y)`` on float32
  ``[n_examples, dim]`` matrices, scikit-learn ``MLPClassifier`` semantics, trained in torch.
- :class:`ProbeSearch` / :func:`probe_search`: 128 configurations trained as 16 batched models (one per
  hidden-size group, spread over the cores), selection on dev (or a stratified 10 % hold-out), five seeded
  refits, mean and population std of test accuracy. By default each fit uses the random numbers of
  ``MLPClassifier(random_state=seed)`` and follows its trajectory.
- :func:`probe_representations`: the same on :class:`~tuneprobe.store.Representations`, returning tidy rows.
"""

from tuneprobe.probes._train import FittedNet, NetConfig, TrainSettings, train_nets
from tuneprobe.probes.estimators import LinearProbe, MLPProbe
from tuneprobe.probes.search import (
    PAPER_ALPHAS,
    PAPER_HIDDEN_SIZES,
    PAPER_SEEDS,
    GridPoint,
    ProbeSearch,
    ProbeSearchResult,
    probe_representations,
    probe_search,
    stratified_holdout,
)

__all__ = [
    "PAPER_ALPHAS",
    "PAPER_HIDDEN_SIZES",
    "PAPER_SEEDS",
    "FittedNet",
    "GridPoint",
    "LinearProbe",
    "MLPProbe",
    "NetConfig",
    "ProbeSearch",
    "ProbeSearchResult",
    "TrainSettings",
    "probe_representations",
    "probe_search",
    "stratified_holdout",
    "train_nets",
]
