"""The calculator's controls, kept in the workspace's ``calc`` choice (``ui.workspace``): the Single layer
and Kernel playground settings survive a page switch and a reload, and travel in a link
(``/calculator?calc={"conv-stride":2}``). Only what a person changed is kept; a value read from a URL is
used only when the control could show it (a whole number in range, one of the options)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import ui


def kept(key: str, default: Any, *, options: Collection | None = None) -> dict[str, Any]:
    """Keyword arguments of a radio, selectbox, checkbox or toggle keyed ``key`` (no value of its own)."""
    accept = None if options is not None else (lambda value: isinstance(value, type(default)))
    return ui.workspace.bind(f"calc.{key}", key, default=default, options=options, accept=accept)


def number(box: Any, label: str, low: int, high: int, default: int, key: str, **kwargs: Any) -> int:
    """A whole-number input from ``low`` to ``high`` keyed ``key``, starting at ``default``."""

    def fits(value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high

    bound = ui.workspace.bind(f"calc.{key}", key, default=default, accept=fits)
    return box.number_input(label, low, high, step=1, **bound, **kwargs)
