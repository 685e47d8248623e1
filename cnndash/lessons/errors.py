"""The error every lesson raises for an input a person can fix, and the checks the lessons share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnndash.errors import UserError


class LessonError(UserError):
    """A lesson input that cannot be computed; the message names the input and what to change."""


def as_grid(values: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:
    """``values`` as a 2-D float64 array; empty or non-numeric cells are refused by position."""
    try:
        grid = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LessonError(f"The {name} must hold numbers only; check every cell ({exc}).") from None
    if grid.ndim != 2 or grid.size == 0:
        raise LessonError(f"The {name} must be a non-empty 2-D grid of numbers, got shape {grid.shape}.")
    bad = np.argwhere(~np.isfinite(grid))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise LessonError(
            f"Cell (row {row}, column {col}) of the {name} is empty or not a number; type a number."
        )
    return grid


def check_range(value: float, name: str, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise LessonError(f"{name} must be between {low} and {high}, got {value}.")
