"""Shared pytest configuration: isolated data/runs folders, small torch thread pools, artifact folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"

# Two cores on CI: keep torch from oversubscribing when pytest and a Streamlit server both run.
os.environ.setdefault("OMP_NUM_THREADS", "2")


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
