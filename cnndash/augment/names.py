"""The saved pipelines' names, read without PyTorch: where they live and which are there.

The rest of :mod:`cnndash.augment` imports torchvision (seconds on a cold, loaded server); the Training
page's first paint lists the pipelines from here alone. Loading, saving and checking a spec stay in
:mod:`cnndash.augment.store`.
"""

from __future__ import annotations

import re
from pathlib import Path

from cnndash import paths

NAME_MAX_CHARS = 64  # longest pipeline name (it is a file name)
NAME_RE = re.compile(rf"[A-Za-z0-9][A-Za-z0-9._-]{{0,{NAME_MAX_CHARS - 1}}}")


def pipelines_dir(data_dir: Path | None = None) -> Path:
    """Folder holding the saved pipelines: ``data_dir()/pipelines``."""
    return (Path(data_dir) if data_dir is not None else paths.data_dir()) / "pipelines"


def is_pipeline_name(name: object) -> bool:
    """Whether ``name`` can name a saved pipeline (1–64 letters, digits, '.', '_' or '-', starting with a
    letter or digit)."""
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None


def list_pipelines(*, data_dir: Path | None = None) -> list[str]:
    """Names of the saved pipelines, sorted."""
    folder = pipelines_dir(data_dir)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.json") if is_pipeline_name(p.stem))
