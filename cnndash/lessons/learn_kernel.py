"""Lesson 2: learn the 1×2 edge kernel ``[1, −1]`` back from an image and its edge map by gradient descent.

The tutorial's set-up: ``X`` is 6×8 ones with columns 2–5 zero, ``Y = corr2d(X, [[1, −1]])``, the loss is
the *sum* of squared errors and each step is ``w ← w − lr · ∂loss/∂w``. All steps are computed at once in
float64 (the gradient of a sum of squares is a closed form), so the lesson is instant and the same for the
same seed; the tests replay it with ``nn.Conv2d`` and autograd. A learning rate above ``2 / λ_max`` of
the loss's Hessian makes the steps grow instead of shrink: the run stops at the first loss over
:data:`DIVERGED_LOSS` and says so instead of showing infinities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnndash.errors import Term
from cnndash.lessons.convolution import corr2d
from cnndash.lessons.errors import LessonError, check_range
from cnndash.text import N_

__all__ = ["DIVERGED_LOSS", "KernelLesson", "edge_image", "learn_kernel"]

TARGET = np.array([[1.0, -1.0]])
DIVERGED_LOSS = 1e8  # a loss this large has left the bowl; stop before it overflows to inf/NaN
MAX_STEPS = 200


def edge_image() -> np.ndarray:
    """The tutorial's 6×8 input: ones, with a black band in columns 2–5 (two vertical edges)."""
    x = np.ones((6, 8))
    x[:, 2:6] = 0
    return x


@dataclass(frozen=True)
class KernelLesson:
    x: np.ndarray  # (6, 8)
    y: np.ndarray  # (6, 7) = corr2d(x, [[1, -1]])
    learning_rate: float
    critical_rate: float  # above 2 / λ_max the steps diverge
    losses: np.ndarray  # loss before each step that was taken (finite values only)
    kernels: np.ndarray  # (len(losses), 2): the kernel at each of those steps
    diverged_at: int | None  # the step whose loss passed DIVERGED_LOSS, or None

    @property
    def final_kernel(self) -> np.ndarray:
        return self.kernels[-1]

    @property
    def diverging(self) -> bool:
        """Above the critical rate the loss grows step after step, even before it passes DIVERGED_LOSS."""
        return self.learning_rate > self.critical_rate

    @property
    def growth_per_step(self) -> float:
        """How much the loss along the steepest direction is multiplied by per step: (1 − η·λ_max)²."""
        return (1 - 2 * self.learning_rate / self.critical_rate) ** 2


def _windows(x: np.ndarray) -> np.ndarray:
    """Every 1×2 window of ``x`` as a row: (positions, 2)."""
    return np.stack([x[:, :-1].ravel(), x[:, 1:].ravel()], axis=1)


def learn_kernel(learning_rate: float, steps: int = 10, seed: int = 0) -> KernelLesson:
    """Gradient descent on the 1×2 kernel from a random start (uniform in ±1/√2, like ``nn.Conv2d``)."""
    check_range(learning_rate, Term(N_("The learning rate")), 1e-6, 10.0)
    if not 1 <= steps <= MAX_STEPS:
        raise LessonError(
            "The number of steps must be between 1 and {most}, got {steps}.", most=MAX_STEPS, steps=steps
        )
    x = edge_image()
    y = corr2d(x, TARGET)
    windows, targets = _windows(x), y.ravel()
    hessian = 2 * windows.T @ windows
    critical = 2 / float(np.linalg.eigvalsh(hessian).max())
    bound = 1 / np.sqrt(2)
    w = np.random.default_rng(seed).uniform(-bound, bound, size=2)
    losses, kernels, diverged = [], [], None
    for step in range(steps + 1):  # the last iteration only records the loss after the final step
        residual = windows @ w - targets
        loss = float(residual @ residual)
        if not np.isfinite(loss) or loss > DIVERGED_LOSS:
            diverged = step
            break
        losses.append(loss)
        kernels.append(w.copy())
        if step < steps:
            w = w - learning_rate * 2 * windows.T @ residual
    return KernelLesson(x, y, float(learning_rate), critical, np.array(losses), np.array(kernels), diverged)
