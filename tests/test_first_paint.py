"""The Training page's first paint imports no PyTorch: what the page file imports before its spinner (the
title, the tabs, the form's first row: ``ui.training.form_start``) must load in a fresh interpreter without
torch, torchvision or scikit-learn, which take seconds on a cold, loaded server (``benchmarks/first_paint.py``).
"""

from __future__ import annotations

import ast
import subprocess
import sys

from tests.conftest import ROOT

HEAVY = ("torch", "torchvision", "sklearn")
PAGE = ROOT / "pages" / "training.py"


def _page_imports() -> list[str]:
    """The modules the page file imports at its top level (the engine it imports later is inside main())."""
    found = []
    for node in ast.parse(PAGE.read_text()).body:
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module != "__future__":
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_the_training_pages_first_row_imports_no_torch():
    modules = _page_imports()
    assert "ui.training.form_start" in modules  # the first row is drawn from what the page imports first
    # A name imported "from a package" may be a module or an attribute: import the longest importable prefix.
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except ModuleNotFoundError:\n"
        "        importlib.import_module(name.rpartition('.')[0])\n"
        "import ui.training.form_start\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"the first paint imports {result.stdout.strip()}"
