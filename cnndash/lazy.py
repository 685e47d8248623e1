"""Re-exports loaded on first use (PEP 562), for import time only: the one ``__getattr__`` / ``__dir__`` pair
of the packages whose ``__init__`` must not import their heavy modules (``cnndash.data``,
``cnndash.augment``: the Training page's first paint imports their torch-free parts before PyTorch).

Not a way around an import cycle: ``tests/test_house.py`` counts every ``LAZY_EXPORTS`` entry as an import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from typing import Any


def lazy_attributes(
    namespace: dict[str, Any], exports: Mapping[str, str], submodules: Collection[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of the package whose globals are ``namespace``: a name of
    ``exports`` (name -> module) or ``submodules`` is imported when first asked for, then kept in the
    package's globals, so it is looked up once."""
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        if name in exports:
            value = getattr(importlib.import_module(exports[name]), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__
