"""Hyperparameter search: a budgeted Optuna study whose trials are runs (:mod:`cnndash.search.study`), and
the background job that runs one from the app (:mod:`cnndash.search.job`)."""

from cnndash.search.study import (
    SearchError,
    SearchResult,
    SearchSpace,
    TrialResult,
    run_search,
    search_trials,
)

__all__ = ["SearchError", "SearchResult", "SearchSpace", "TrialResult", "run_search", "search_trials"]
