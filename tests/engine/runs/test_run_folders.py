"""The run folder as stored data you can trust (issue 22): runs are named, never located by path; what a
killed process leaves is swept; the runs folder has a quota; only cnndash/runs knows the layout."""

from __future__ import annotations

import ast
import os
import shutil
import time
from pathlib import Path

import pytest

from cnndash.runs import RunError, RunWriter, delete_run, list_runs, stop_run, sweep_runs, write_status
from cnndash.runs.quota import RUNS_QUOTA_ENV, RunsQuotaError
from cnndash.training.events import EpochEvent
from cnndash.training.loops import TrainConfig, train
from tests.conftest import ROOT


def copy_run(tiny_run: Path, root: Path, name: str) -> Path:
    return Path(shutil.copytree(tiny_run, root / name))


@pytest.mark.parametrize("name", ["..", ".", "", "../proj", "sub/..", "/tmp", ".hidden", "a\\b"])
def test_delete_and_stop_take_a_run_name_only_and_touch_nothing_else(tiny_run, tmp_path, name):
    # The defect: from proj/sub, `runs delete ..` emptied proj/ (any folder holding a config.json went).
    proj = tmp_path / "proj"
    runs = proj / "sub"
    copy_run(tiny_run, runs, "kept")
    (proj / "config.json").write_text("{}")
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    for action in (delete_run, stop_run):
        with pytest.raises(RunError, match=r"not a run name|No run"):
            action(name, runs)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_a_symlink_in_the_runs_folder_is_not_a_run_to_delete(tiny_run, tmp_path):
    outside = copy_run(tiny_run, tmp_path, "outside")
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "link").symlink_to(outside, target_is_directory=True)
    with pytest.raises(RunError, match="No run 'link'"):
        delete_run("link", runs)
    assert (outside / "config.json").is_file()


def test_a_deleted_run_vanishes_in_one_step_and_a_cut_deletion_is_finished_by_the_sweep(tiny_run, tmp_path):
    runs = tmp_path / "runs"
    copy_run(tiny_run, runs, "done")
    delete_run("done", runs)
    assert list(runs.iterdir()) == []
    # A process killed mid-deletion leaves the renamed folder: never listed, removed by the next sweep.
    half = copy_run(tiny_run, runs, ".deleting-gone-1234")
    assert list_runs(runs, include_broken=True) == []
    assert sweep_runs(runs) >= 1 and not half.exists()


def _leave_leftovers(run: Path) -> None:
    old = time.time() - 3600
    for name in (".last.pt.x1y2.tmp", ".predictions_best.abc.npz", ".rendezvous-feed"):
        (run / name).write_bytes(b"half")
        os.utime(run / name, (old, old))


def test_the_sweep_removes_what_killed_writers_left_only_where_nobody_trains(tiny_run, tmp_path):
    runs = tmp_path / "runs"
    idle, live = copy_run(tiny_run, runs, "idle"), copy_run(tiny_run, runs, "live")
    _leave_leftovers(idle)
    _leave_leftovers(live)
    (idle / ".status.json.new.tmp").write_bytes(b"being written now")  # too fresh: may be a live writer's
    with RunWriter(live).training():  # a trainer starting on a folder removes what a killed one left …
        assert sorted(p.name for p in live.iterdir() if p.name.startswith(".")) == [".rendezvous-feed"]
        write_status(live, "running")
        _leave_leftovers(live)
        assert sweep_runs(runs) == 3
        assert sorted(p.name for p in idle.iterdir() if p.name.startswith(".")) == [".status.json.new.tmp"]
        assert len([p for p in live.iterdir() if p.name.startswith(".")]) == 3  # … and the sweep leaves it be
    assert (idle / "last.pt").is_file() and (idle / "config.json").is_file()


def test_a_full_runs_folder_refuses_new_runs_and_a_checkpoint_that_would_overflow(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    runs.mkdir()
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    monkeypatch.setenv(RUNS_QUOTA_ENV, "4")
    config = TrainConfig(
        dataset="shapes:count=80,size=16", model="lenet", epochs=2, tensorboard=False, threads=1
    )

    def fill_after_epoch_1(event):
        if isinstance(event, EpochEvent) and event.epoch == 1:  # someone else filled the folder meanwhile
            (runs / "filler.bin").write_bytes(b"\0" * (4 * 2**20))

    with pytest.raises(RunsQuotaError, match=f"runs folder is full.*{RUNS_QUOTA_ENV}"):
        train(config, runs / "r", on_event=fill_after_epoch_1)
    run = list_runs(runs)[0]
    # The run failed with the quota's message and kept epoch 1's checkpoint: delete something, then resume.
    assert run.status == "failed" and "runs folder is full" in run.message and run.resumable
    assert run.load_checkpoint("last").state.epoch == 1
    assert not [p for p in (runs / "r").iterdir() if p.name.endswith(".tmp")]
    with pytest.raises(RunsQuotaError, match="no new run can start"):
        train(config, runs / "second")
    assert not (runs / "second").exists()
    (runs / "filler.bin").unlink()
    assert train(config, runs / "r", resume=True)["status"] == "finished"


# The run folder's file names: written in cnndash/runs only (the layout can change in one place).
LAYOUT_NAMES = {"config.json", "dataset.json", "metrics.csv", "batches.csv", "summary.json", "status.json",
                "lease.json", "stop.json", "launch.json", "train.log", "last.pt", "best.pt",
                "confusion_matrix.csv", "classification_report.csv"}  # fmt: skip


def _literals(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.append((node.lineno, node.value))
        elif isinstance(node, ast.JoinedStr):  # f"{which}.pt", f"predictions_{checkpoint}.npz"
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            found.append((node.lineno, "{}" + text))
    return found


def test_only_cnndash_runs_spells_the_run_folder_layout():
    offenders = []
    for folder in ("cnndash", "ui", "pages"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT)
            if rel.parts[:2] == ("cnndash", "runs") or rel.parts[:3] == ("cnndash", "export", "template"):
                continue
            for line, text in _literals(path):
                if (
                    text in LAYOUT_NAMES
                    or text in ("{}.pt", "{}.npz")
                    or text.startswith(("{}predictions_", "{}embeddings_"))
                ):
                    offenders.append(f"{rel}:{line}: {text!r}")
    assert offenders == []
