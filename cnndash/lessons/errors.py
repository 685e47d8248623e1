"""The error every lesson raises for an input a person can fix, and the checks the lessons share."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from cnndash.arith import ShapeError
from cnndash.errors import Phrase, UserError


class LessonError(UserError):
    """A lesson input that cannot be computed; the message names the input and what to change."""

    domain = "learn"  # the Learn page's messages: ui.user_errors translates them there

    def english(self) -> str:
        text = super().english()  # a sentence, even when it starts with a shape error's words
        return text[:1].upper() + text[1:]


def shape_problem(exc: ShapeError) -> LessonError:
    """The calculator's shape error said as a lesson's sentence (its parts translated as the calculator's)."""
    return LessonError("{problem}.", problem=Phrase.of(exc))


def as_grid(values: Sequence[Sequence[float]] | np.ndarray, name: str) -> np.ndarray:  # name: a Term
    """``values`` as a 2-D float64 array; empty or non-numeric cells are refused by position."""
    try:
        grid = np.array(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise LessonError(
            "The {name} must hold numbers only; check every cell ({error}).", name=name, error=exc
        ) from None
    if grid.ndim != 2 or grid.size == 0:
        raise LessonError(
            "The {name} must be a non-empty 2-D grid of numbers, got shape {shape}.",
            name=name,
            shape=grid.shape,
        )
    bad = np.argwhere(~np.isfinite(grid))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise LessonError(
            "Cell (row {row}, column {col}) of the {name} is empty or not a number; type a number.",
            row=row,
            col=col,
            name=name,
        )
    return grid


def check_range(value: float, name: str, low: float, high: float) -> None:
    if not (math.isfinite(value) and low <= value <= high):
        raise LessonError(
            "{name} must be between {low} and {high}, got {value}.",
            name=name,
            low=low,
            high=high,
            value=value,
        )
