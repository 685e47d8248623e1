"""Named pipelines on disk: specs kept as JSON under ``data_dir()/pipelines/<name>.json``."""

from __future__ import annotations

import json
from pathlib import Path

from cnndash.augment.build import build_steps
from cnndash.augment.checks import validate_spec
from cnndash.augment.names import NAME_MAX_CHARS, is_pipeline_name, list_pipelines, pipelines_dir
from cnndash.augment.ops import AugmentError, Spec


def _pipeline_path(name: str, data_dir: Path | None) -> Path:
    if not is_pipeline_name(name):
        raise AugmentError(
            "Pipeline name {name} is not allowed: use 1–{name_max_chars} letters, digits, '.', '_' or '-', "
            "starting with a letter or digit.",
            name=repr(name),
            name_max_chars=NAME_MAX_CHARS,
        )
    return pipelines_dir(data_dir) / f"{name}.json"


def save_pipeline(name: str, spec: Spec, *, data_dir: Path | None = None) -> Path:
    """Validate ``spec`` and store it as ``data_dir()/pipelines/<name>.json`` (replacing that name)."""
    path = _pipeline_path(name, data_dir)
    steps = validate_spec(spec)
    build_steps(steps)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(steps, indent=2))
    tmp.replace(path)
    return path


def load_pipeline(name: str, *, data_dir: Path | None = None) -> Spec:
    """The spec saved under ``name`` (validated)."""
    path = _pipeline_path(name, data_dir)
    if not path.is_file():
        available = ", ".join(list_pipelines(data_dir=data_dir)) or "none saved yet"
        raise AugmentError(
            "No saved pipeline named {name} (available: {available}).", name=repr(name), available=available
        )
    try:
        spec = json.loads(path.read_text())
    except ValueError as exc:
        raise AugmentError(
            "Saved pipeline {name} ({path}) is not valid JSON: {exc}", name=repr(name), path=path, exc=exc
        ) from None
    return validate_spec(spec)


def delete_pipeline(name: str, *, data_dir: Path | None = None) -> None:
    """Delete the pipeline saved under ``name``."""
    path = _pipeline_path(name, data_dir)
    if not path.is_file():
        raise AugmentError("No saved pipeline named {name}; nothing deleted.", name=repr(name))
    path.unlink()
