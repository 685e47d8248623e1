"""Where cnndash keeps uploaded datasets and training runs on disk.

Defaults are ``./data`` and ``./runs`` relative to the working directory; the environment variables
``CNNDASH_DATA_DIR`` and ``CNNDASH_RUNS_DIR`` override them (the tests point them at temporary folders).
"""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    return Path(os.environ.get("CNNDASH_DATA_DIR", "data")).expanduser()


def runs_dir() -> Path:
    return Path(os.environ.get("CNNDASH_RUNS_DIR", "runs")).expanduser()
