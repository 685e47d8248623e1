"""The house rules that keep the code base navigable, checked on the code itself (shared/HOUSE.md).

- the engine never imports Streamlit, and pages never import torch;
- imports run one way: no cycle among cnndash's modules, nor among ui's;
- no private name (``_x``) is imported from another module of this project;
- files stay short enough to read in one sitting, pages thin;
- every name the public API (shared/API.md) documents is importable where it is documented.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from tests.conftest import ROOT

PACKAGES = ("cnndash", "ui")
MAX_MODULE_LINES = 430  # "no file over ~400 lines"
MAX_PAGE_LINES = 200  # "pages stay thin (~150 lines)"
# Names shared/API.md documents, by the module it documents them in.
API = {
    "cnndash.arith": ["conv_output_size", "pool_output_size", "conv_transpose_output_size", "ShapeError"],
    "cnndash.trace": ["trace_shapes", "ShapeTrace"],
    "cnndash.data": ["DatasetError", "extract_image_zip"],
    "cnndash.augment": ["build_pipeline", "pipeline_code", "AugmentError"],
    "cnndash.cam": ["compute_cam"],
    "cnndash.cli": ["main"],
}


def _python_files(*folders: str) -> list[Path]:
    return sorted(p for folder in folders for p in (ROOT / folder).rglob("*.py") if "template" not in p.parts)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _top_level_imports(path: Path) -> list[tuple[str, list[str]]]:
    """(module, names) of every import outside ``if TYPE_CHECKING:`` blocks, relative ones resolved, and of
    every lazy re-export (a package's ``LAZY_EXPORTS``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for node in ast.walk(block)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, [alias.name for alias in node.names]))
        elif _assigns(node, "LAZY_EXPORTS") and isinstance(node.value, ast.Dict):
            # A package's names imported on first use (PEP 562, for import time): imports all the same.
            pairs = zip(node.value.keys, node.value.values, strict=True)
            found.extend((ast.literal_eval(module), [ast.literal_eval(name)]) for name, module in pairs)
    return found


def _assigns(node: ast.AST, name: str) -> bool:
    return isinstance(node, ast.Assign) and any(
        isinstance(t, ast.Name) and t.id == name for t in node.targets
    )


def test_the_engine_never_imports_streamlit_and_pages_never_import_torch():
    engine = [
        p
        for p in _python_files("cnndash")
        for m, _ in _top_level_imports(p)
        if m.split(".")[0] == "streamlit"
    ]
    pages = [
        p for p in _python_files("pages") for m, _ in _top_level_imports(p) if m.split(".")[0] == "torch"
    ]
    assert engine == [] and pages == []


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_run_one_way(package):
    files = {_module_name(p): p for p in _python_files(package)}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        targets = set()
        for module, names in _top_level_imports(path):
            for candidate in [module, *(f"{module}.{n}" for n in names)]:
                if candidate in files and candidate != name:
                    targets.add(candidate)
        graph[name] = targets
    # A package's __init__ importing its own submodules is how a package re-exports: not a cycle.
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + ".") and files[node].name == "__init__.py":
                continue
            if state.get(nxt) == "open":
                cycles.append([*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert cycles == []


def test_no_private_name_is_imported_from_another_module():
    offenders = []
    for path in [*_python_files("cnndash", "ui", "pages", "tests", "benchmarks"), ROOT / "app.py"]:
        for module, names in _top_level_imports(path):
            if module.split(".")[0] not in (*PACKAGES, "tests", "benchmarks"):
                continue
            offenders += [f"{path.relative_to(ROOT)}: {module}.{n}" for n in names if n.startswith("_")]
    assert offenders == []


def test_files_are_short_and_pages_thin():
    long_modules = [
        f"{p.relative_to(ROOT)} ({n})"
        for p in _python_files(*PACKAGES)
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    ]
    fat_pages = [
        f"{p.relative_to(ROOT)} ({n})"
        for p in _python_files("pages")
        if (n := len(p.read_text().splitlines())) > MAX_PAGE_LINES
    ]
    assert long_modules == [] and fat_pages == []
    assert sorted(p.name for p in ROOT.glob("ui_*.py")) == [], "UI glue belongs in the ui/ package"


@pytest.mark.parametrize("module", sorted(API))
def test_every_documented_name_is_importable_where_documented(module):
    loaded = importlib.import_module(module)
    assert [name for name in API[module] if not hasattr(loaded, name)] == []


MAX_FUNCTION_LINES = 60  # "no function over ~60 lines without a written reason"
LONG_REASON = "# long:"  # a comment with this tag, inside the function, says why it is longer


def test_functions_are_short_or_say_why():
    long_functions = []
    for path in _python_files(*PACKAGES, "pages"):
        source = path.read_text()
        lines = source.splitlines()
        for node in ast.walk(ast.parse(source)):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = node.body[1:] if ast.get_docstring(node) and len(node.body) > 1 else node.body
            length = node.end_lineno - body[0].lineno + 1
            text = "\n".join(lines[node.lineno - 1 : node.end_lineno]).lower()
            if length > MAX_FUNCTION_LINES and LONG_REASON not in text:
                long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long_functions == []
