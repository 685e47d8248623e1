"""`python -m cnndash runs stop|delete NAME` and `train --out`: names only, one-line errors, exit 2, nothing
touched; and every config field checked before anything starts (issue 22)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest

from cnndash.cli import main
from cnndash.paths import runs_dir
from cnndash.runs import load_run
from cnndash.runs.lease import LEASE_ENV
from tests.conftest import ROOT


def one_line_error(capsys) -> str:
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("error: "), err
    return lines[0]


@pytest.mark.parametrize("action", ["delete", "stop"])
@pytest.mark.parametrize("name", ["..", ".", "", "../proj", "/etc", "sub/run"])
def test_runs_delete_and_stop_refuse_anything_but_a_name(
    tiny_run, tmp_path, monkeypatch, capsys, action, name
):
    proj = tmp_path / "proj"
    runs = proj / "sub"
    shutil.copytree(tiny_run, runs / "run")
    (proj / "config.json").write_text("{}")  # `runs delete ..` from proj/sub used to empty proj/
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    monkeypatch.chdir(runs)
    before = sorted(tmp_path.rglob("*"))
    assert main(["runs", action, name]) == 2
    assert "not a run name" in one_line_error(capsys)
    assert sorted(tmp_path.rglob("*")) == before


def test_train_refuses_an_empty_out(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset", "digits", "--model", "lenet", "--epochs", "1", "--out", ""]) == 2
    assert "--out is empty" in one_line_error(capsys)
    assert list(tmp_path.iterdir()) == []


BAD_SETTINGS = [
    ({"val_fraction": "x"}, "val_fraction"),
    ({"device": "cpu:x"}, "device"),
    ({"threads": -3}, "threads"),
    ({"num_workers": -1}, "num_workers"),
    ({"step_size": -4}, "step_size"),
    ({"epochs": 2.5}, "epochs"),
    ({"amp": "yes"}, "amp"),
    ({"momentum": 1.5}, "momentum"),
    ({"memory_budget_mb": -1}, "memory_budget_mb"),
    ({"augment": "flip"}, "augment"),
    ({"image_size": [32]}, "image_size"),
    ({"seed": -1}, "seed"),
]


@pytest.mark.parametrize(("bad", "setting"), BAD_SETTINGS)
def test_a_config_file_with_a_bad_setting_is_one_line_and_exit_2(tmp_path, capsys, bad, setting):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"dataset": "digits", "model": "lenet", "epochs": 1, **bad}))
    assert main(["train", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert f"'{setting}'" in one_line_error(capsys)
    assert not (tmp_path / "run").exists()


def test_runs_stop_asks_a_terminal_run_to_stop_and_it_ends_stopped_resumable(monkeypatch, capsys):
    monkeypatch.setenv(LEASE_ENV, "0.2")
    out = runs_dir() / "long"
    trainer = subprocess.Popen(
        [sys.executable, "-m", "cnndash", "train", "--dataset", "digits", "--model", "lenet", "--epochs", "200",
         "--image-size", "12", "--device", "cpu", "--out", str(out)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "last.pt").is_file():  # one epoch done: there is something to resume
            assert trainer.poll() is None and time.monotonic() < deadline, trainer.stderr.read()
            time.sleep(0.1)
        assert main(["runs", "stop", "long"]) == 0
        assert capsys.readouterr().out.strip() == "asked long to stop"
        stdout, stderr = trainer.communicate(timeout=60)
    finally:
        if trainer.poll() is None:
            trainer.kill()
            trainer.wait(10)
    assert trainer.returncode == 0, stderr
    assert json.loads(stdout)["status"] == "stopped"
    run = load_run("long")
    assert run.status == "stopped" and run.resumable and "Stopped by the user" in run.message
    assert main(["runs", "stop", "long"]) == 2  # nothing trains it any more
    assert "is not training (status: stopped)" in one_line_error(capsys)
