"""Shared pytest configuration: isolated data/runs folders, small torch thread pools, artifact folder."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# Two cores on CI: keep torch from oversubscribing when pytest and a Streamlit server both run.
os.environ.setdefault("OMP_NUM_THREADS", "2")

# Property tests: on CI the examples are derandomized (the same thousands of configurations every run), so
# a green CI is reproducible; locally every run draws new ones and keeps searching for disagreements with
# PyTorch. Must be loaded before test modules build their ``settings(...)``.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.register_profile("dev", print_blob=True)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(autouse=True)
def _isolated_dirs(tmp_path_factory, monkeypatch):
    """Every test sees empty data and runs folders unless it sets its own."""
    base = tmp_path_factory.mktemp("cnndash-home")
    monkeypatch.setenv("CNNDASH_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(base / "runs"))


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


# --------------------------------------------------------------------------------------------------
# A small finished training run, shared by the evaluation, Grad-CAM and training tests.

TINY_RUN_DATASET = "shapes:count=300,size=32"


def make_tiny_run(runs_dir: Path, name: str = "tiny") -> Path:
    """Train LeNet for 2 epochs on 300 32×32 ``shapes`` images into ``runs_dir/name`` (a few seconds).

    Returns the finished run directory (config.json, dataset.json, metrics.csv, best.pt, last.pt,
    summary.json, status.json). An existing finished run of that name is reused.
    """
    from cnndash.training.loops import TrainConfig, train

    run_dir = Path(runs_dir) / name
    if (run_dir / "summary.json").is_file():
        return run_dir
    config = TrainConfig(dataset=TINY_RUN_DATASET, model="lenet", epochs=2, batch_size=32, seed=0)
    train(config, run_dir)
    return run_dir


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """Path to a finished LeNet run on a small ``shapes`` set (trained once per test session)."""
    return make_tiny_run(tmp_path_factory.mktemp("tiny-runs"), "tiny")


def plotly_array(value) -> np.ndarray:
    """Plotly 6 sends numeric arrays as {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = [int(n) for n in str(value.get("shape", len(flat))).split(",")]
        return flat.reshape(shape)
    return np.asarray(value)


# --------------------------------------------------------------------------------------------------
# The hostile-names dataset and its run (tests/fixtures.py), built once per session, copied per test.


@pytest.fixture(scope="session")
def hostile_source(tmp_path_factory) -> tuple[Path, Path]:
    """(data folder, runs folder) holding the hostile-names dataset and a finished LeNet run on it."""
    from tests.fixtures import make_hostile_home

    return make_hostile_home(tmp_path_factory.mktemp("hostile-home"))


@pytest.fixture
def hostile_home(hostile_source, tmp_path, monkeypatch) -> tuple[Path, Path]:
    """A private copy of :func:`hostile_source`, set as the data and runs folders the app reads."""
    from tests.fixtures import copy_home

    data_dir, runs_dir = copy_home(hostile_source, tmp_path / "hostile")
    monkeypatch.setenv("CNNDASH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs_dir))
    return data_dir, runs_dir
