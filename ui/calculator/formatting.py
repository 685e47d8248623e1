"""Shapes and counts as the conv calculator writes them: ``8×35×48`` for a shape, ``1.23 M`` for a count.

Shared by the Single layer and Layer stack tabs, so both show a shape or a MAC count the same way.
"""

from __future__ import annotations

from collections.abc import Iterable


def dims(shape: Iterable) -> str:
    """A shape (or any sequence of sizes) joined with ×: ``(8, 35, 48)`` → ``8×35×48``."""
    return "×".join(str(v) for v in shape)


def human(number: int) -> str:
    """A count with a k / M / G suffix and two decimals from a thousand up: ``1234567`` → ``1.23 M``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if number >= scale:
            return f"{number / scale:.2f} {unit}"
    return str(number)
