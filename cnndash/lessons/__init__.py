"""The Learn page's engine: one small, deterministic experiment per lesson, numbers checked against torch.

Each lesson module takes plain Python / NumPy inputs and returns NumPy arrays or frozen dataclasses, so
the page never touches torch and every result can be cached. Inputs a person can get wrong (a kernel
larger than the grid, a padding over half the kernel, channels that do not divide into groups) raise
:class:`LessonError`, a ``ValueError`` whose message says what to change.

- :mod:`cnndash.lessons.convolution` — cross-correlation step by step, padding and stride, channels,
  convolution as matrix multiplication (lessons 1, 3, 4, 5);
- :mod:`cnndash.lessons.learn_kernel` — learning a 1×2 edge kernel by gradient descent (lesson 2);
- :mod:`cnndash.lessons.pool_norm_dropout` — pooling, normalisation layers, dropout (lessons 6, 7, 8);
- :mod:`cnndash.lessons.networks` — the classic networks as shape traces (lesson 9).

Lesson 10 (what a trained network sees) reuses :mod:`cnndash.explain.feature_maps` directly.
:mod:`cnndash.lessons.agreement` says whether a hand-made result equals PyTorch's, for every lesson.
"""

from __future__ import annotations

from cnndash.lessons.errors import LessonError

__all__ = ["LessonError"]
