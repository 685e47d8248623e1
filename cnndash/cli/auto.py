"""``train``'s automatic choices: ``--model auto`` (the default) picks the settings from the data and the time
budget (:mod:`cnndash.training.auto`, the app's one click), ``--lr auto`` runs the learning-rate finder
(:mod:`cnndash.training.lr_finder`). What was chosen goes into ``config.json`` like any setting; why goes to
stderr while choosing and into ``summary.json`` (``auto``, ``lr_finder``) at the end."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from cnndash.runs import RunWriter
from cnndash.training.auto import AUTO_FIELDS, auto_config
from cnndash.training.budget import ONE_CLICK_BUDGET_S
from cnndash.training.config import TrainConfig


def settings_are_auto(config_model: object, arg_model: str | None) -> bool:
    """No model given (neither ``--model`` nor the ``--config`` file), or ``auto``."""
    model = arg_model if arg_model is not None else config_model
    return model is None or str(model).strip().lower() == "auto"


def explicit_settings(args: argparse.Namespace, base: dict) -> set[str]:
    """The settings a person set: in the ``--config`` file or as an option (``--lr auto`` is not a value)."""
    given = {key for key in AUTO_FIELDS if getattr(args, key, None) not in (None, "auto", False)}
    return set(base) | given


def choose_for_cli(
    config: TrainConfig, *, model_auto: bool, lr_auto: bool, explicit: set[str], budget_s: float | None
) -> tuple[TrainConfig, dict]:
    """``config`` with the automatic choices applied, and what summary.json records about them."""
    notes: dict = {}
    if model_auto:
        choice = auto_config(config, explicit=explicit, budget_s=budget_s or ONE_CLICK_BUDGET_S)
        config = choice.config
        notes["auto"] = choice.to_dict()
        for line in choice.text().splitlines():
            print(f"auto: {line}", file=sys.stderr)
    elif budget_s is not None:
        raise ValueError("--budget-s goes with --model auto (or no --model); drop it or the --model.")
    if lr_auto:
        from cnndash.training.lr_finder import find_lr  # only when asked: it trains

        print("lr auto: running the learning-rate finder…", file=sys.stderr)
        finding = find_lr(config)
        config = replace(config, lr=finding.suggestion)
        notes["lr_finder"] = finding.to_dict()
        print(f"lr auto: {finding.reason}", file=sys.stderr)
    return config, notes


def record_choices(out: Path, summary: dict, notes: dict) -> dict:
    """``summary`` with the choices' reasons, written back to the run's summary.json."""
    if not notes:
        return summary
    summary = {**summary, **notes}
    RunWriter(out).write_summary(summary)
    return summary
