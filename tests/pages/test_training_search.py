"""The search on the Training page's Runs tab (ui.training.search_tab): Start runs a real Optuna study of the
Train tab's settings in the background; the finished study shows its trials in parallel coordinates and a
table, its trials stay out of every run picker (listed under their search), and "Train the best" starts a
normal run with the best trial's settings."""

from __future__ import annotations

import pytest

from cnndash.jobs.registry import get_registry
from cnndash.search.job import active_search_job
from tests.pages.test_pages import run_page

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _no_job_left_running():
    yield
    if (search := active_search_job()) is not None:
        search.stop()
        search.wait(60)
    get_registry().stop_all(timeout=60)


def tiny_settings(at) -> None:
    """Digits at 8 px with SimpleCNN for one epoch: a trial takes about a second."""
    at.selectbox(key="train-model").set_value("simplecnn").run()
    at.number_input(key="train-image-size").set_value(8).run()
    at.number_input(key="train-batch-size").set_value(64).run()
    at.number_input(key="train-epochs").set_value(1).run()


def test_a_search_from_the_runs_tab_shows_its_trials_and_trains_the_best():
    at = run_page(PAGE)
    tiny_settings(at)
    at.number_input(key="search-trials").set_value(3).run()
    at.number_input(key="search-budget").set_value(300).run()
    at.button(key="search-start").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    job = active_search_job()
    assert job is not None and job.wait(240)
    at.run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    result = job.snapshot().result
    assert result is not None and len(result.trials) == 3
    assert any(c.proto.id.endswith("search-parcoords") for c in at.get("plotly_chart"))
    table = next(d.value for d in at.dataframe if "trial" in d.value.columns)  # the search's trials
    assert list(table["trial"]) == [0, 1, 2] and set(table["run"]) == {t.run_name for t in result.trials}
    # The trials are listed under their search, never in a picker of runs.
    trial_runs = {t.run_name for t in result.trials}
    pickers = [w for w in (*at.selectbox, *at.multiselect) if w.key and w.key.startswith(("runs-", "train-"))]
    assert all(not trial_runs & set(map(str, w.options)) for w in pickers)
    assert any(f"Search {result.search_id}" in e.label for e in at.expander)
    at.button(key="search-train-best").click().run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    started = get_registry().active() or get_registry().latest()
    assert started is not None and started.config.purpose == "train" and started.config.group == ""
    assert started.config.lr == result.best_config.lr and started.config.model == result.best_config.model
