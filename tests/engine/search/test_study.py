"""The budgeted search with real runs: a 3-trial study on digits at 8 px finishes, its trials are hidden runs
of one group that can be read back, the best trains as a normal run; the deadline cuts a search short; the
background job goes through the jobs rule and stops on request; ``sweep`` on the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from cnndash.cli import main
from cnndash.jobs.registry import JobRegistry, get_registry
from cnndash.runs import list_runs
from cnndash.search import SearchError, SearchSpace, TrialResult, run_search, search_trials
from cnndash.search.job import SearchBusyError, start_lr_finder, start_search
from cnndash.search.study import best_trial
from cnndash.training.config import TrainConfig
from cnndash.training.loops import train

BASE = TrainConfig(dataset="digits", model="simplecnn", image_size=8, batch_size=64, epochs=2, lr=3e-3,
                   tensorboard=False)  # fmt: skip


def test_a_three_trial_study_finishes_its_trials_are_hidden_and_the_best_trains(tmp_path):
    ended = []
    result = run_search(BASE, trials=3, budget_s=300, runs_dir=tmp_path, on_trial=ended.append)
    assert [t.number for t in result.trials] == [0, 1, 2] and ended == result.trials
    assert result.trials[0].params == {"lr": 3e-3} and result.trials[0].state == "complete"
    assert len(result.trials[0].curve) == BASE.epochs
    assert {t.state for t in result.trials} <= {"complete", "pruned"}
    lrs = [t.params["lr"] for t in result.trials]
    assert all(3e-4 <= lr <= 9e-3 for lr in lrs) and len(set(lrs)) == 3
    runs = list_runs(tmp_path)
    assert sorted(r.name for r in runs) == sorted(t.run_name for t in result.trials)
    assert all(r.purpose == "trial" and r.config["group"] == result.group for r in runs)
    assert list_runs(tmp_path, include_hidden=False) == []
    assert search_trials(result.search_id, tmp_path) == [
        replace(t, seconds=round(t.seconds, 2)) for t in result.trials
    ]
    best = result.best_config
    assert best is not None and best.purpose == "train" and best.group == "" and best.epochs == BASE.epochs
    assert best.lr == result.best.params["lr"] and result.best in result.trials
    summary = train(best, tmp_path / "best")
    assert summary["status"] == "finished" and [
        r.name for r in list_runs(tmp_path, include_hidden=False)
    ] == ["best"]
    assert result.table()[0] == {
        "number": 0,
        "lr": 3e-3,
        "value": result.trials[0].value,
        "state": "complete",
    }


def test_the_deadline_stops_the_trial_in_flight_and_leaves_the_rest(tmp_path):
    long = TrainConfig(**{**BASE.to_dict(), "epochs": 200})  # far longer than the budget on any machine
    result = run_search(long, trials=5, budget_s=1.0, runs_dir=tmp_path)
    assert len(result.trials) == 1 and result.not_started == 4 and not result.stopped
    assert result.trials[0].state == "stopped" and "deadline" in result.trials[0].note


def test_bad_search_settings_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(SearchError, match="whole number from 1 to 100"):
        run_search(BASE, trials=0, runs_dir=tmp_path)
    with pytest.raises(SearchError, match="learning-rate range"):
        run_search(BASE, trials=2, space=SearchSpace(models=("lenet",), lr_low=1e-2, lr_high=1e-3))
    with pytest.raises(SearchError, match="positive number of seconds"):
        run_search(BASE, trials=2, budget_s=-1, runs_dir=tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_search_job_claims_its_device_and_stops_on_request(tmp_path):
    job = start_search(BASE, trials=20, budget_s=300, runs_dir=tmp_path)
    try:
        with pytest.raises(SearchBusyError, match="search"):  # one search at a time on the CPU
            start_search(BASE, trials=2, runs_dir=tmp_path)
        with pytest.raises(ValueError, match="search"):  # and no training beside it
            JobRegistry().start(BASE, runs_dir=tmp_path / "other")
        # The sidebar's list of what runs now has it, with a progress line and fraction.
        assert ("search", job.search_id, job) in get_registry().running()
        assert "trial" in job.status_text() and 0.0 <= job.fraction_done() < 1.0
    finally:
        job.stop()
        assert job.wait(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.result is not None and snap.result.stopped
    assert snap.fraction == 1.0 and len(snap.done) == len(snap.result.trials) < 20
    assert all(kind != "search" for kind, _, _ in get_registry().running())
    again = start_search(BASE, trials=1, budget_s=300, runs_dir=tmp_path)  # the claim was released
    assert again.wait(120) and again.snapshot().status == "finished"


def test_sweep_on_the_command_line_prints_the_trials_and_writes_the_best_config(
    tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(tmp_path / "runs"))
    best = tmp_path / "best.json"
    argv = ["sweep", "--dataset", "digits", "--model", "simplecnn", "--epochs", "1", "--trials", "2",
            "--image-sizes", "8,12", "--budget-s", "300", "--best-config", str(best)]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert len(result["trials"]) == 2 and "trial 1:" in err and "train it with" in err
    config = TrainConfig.from_dict(json.loads(best.read_text()))
    assert config.purpose == "train" and config.image_size in (8, 12)
    assert main(["sweep", "--dataset", "digits", "--image-sizes", "8,x"]) == 2
    assert "whole numbers" in capsys.readouterr().err


def test_the_lr_finder_job_reports_progress_and_its_finding(tmp_path):
    job = start_lr_finder(BASE)
    with pytest.raises(SearchBusyError, match="lr-finder"):  # it trains on the CPU: nothing else there
        start_search(BASE, trials=2, runs_dir=tmp_path)
    assert job.wait(120)
    snap = job.snapshot()
    assert snap.status == "finished" and snap.fraction == 1.0 and snap.finding is not None
    assert snap.finding.lrs and snap.finding.suggestion > 0


def test_the_best_is_the_trial_furthest_ahead_of_the_reference_at_the_same_epoch():
    ref = TrialResult(0, {"lr": 3e-3}, 0.90, "complete", "t0", epochs=4)
    short_ahead = TrialResult(1, {"lr": 1e-3}, 0.70, "stopped", "t1", epochs=2)  # its share ended
    short_behind = TrialResult(2, {"lr": 1e-2}, 0.80, "pruned", "t2", epochs=3)
    curves = {0: [0.5, 0.6, 0.85, 0.9], 1: [0.6, 0.7], 2: [0.4, 0.5, 0.8]}
    assert best_trial([ref, short_ahead, short_behind], curves) is short_ahead  # 0.70 vs 0.60 after 2 epochs
    curves[1] = [0.5, 0.6]  # level with the reference: the reference wins the tie
    assert best_trial([ref, short_ahead, short_behind], curves) is ref
    assert best_trial([ref, short_ahead, short_behind]) is ref  # no curves: the best complete trial
    # The trials' own curves (as run_search records them and search_trials reads them back) count too.
    with_curves = [
        replace(t, curve=(0.5, 0.6, 0.85, 0.9) if t is ref else (0.6, 0.7)) for t in (ref, short_ahead)
    ]
    assert best_trial(with_curves).number == 1
