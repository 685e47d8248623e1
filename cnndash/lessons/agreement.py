"""Whether a lesson's hand-made numbers equal PyTorch's: the check behind every lesson's "By hand = …" line.

Every lesson computes its result twice, by hand in NumPy and with the ``torch.nn`` layer; the two must
have the same shape and differ by no more than rounding (:data:`TOLERANCE`). The tests make sure they
always do; the page still says so, and asks for a report if they ever do not.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["TOLERANCE", "Agreement", "check_agreement"]

TOLERANCE = 1e-9  # largest difference still counted as equal: float64 rounding, far below any shown digit


@dataclass(frozen=True)
class Agreement:
    shape: tuple[int, ...]  # the hand-made result's shape
    largest_difference: float  # max |ours − theirs| (0 for an empty result)
    same: bool  # same shape and largest_difference ≤ the tolerance


def check_agreement(ours: ArrayLike, theirs: ArrayLike, tolerance: float = TOLERANCE) -> Agreement:
    """Compare a hand-made result with PyTorch's.

    Shapes that NumPy cannot broadcast against each other raise its ``ValueError``.
    """
    diff = float(np.abs(np.asarray(ours) - np.asarray(theirs)).max()) if np.size(ours) else 0.0
    same = np.shape(ours) == np.shape(theirs) and diff <= tolerance
    return Agreement(tuple(np.shape(ours)), diff, bool(same))
