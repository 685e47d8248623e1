"""The engine, imported in the background.

Importing the engine costs seconds (torch, torchvision); the Home page and the calculator's first paint
need none of it. So the ``ui`` package imports no engine module at load time: a thread imports them as
soon as the server loads ``ui``, and the few shared helpers that need one get it through :func:`engine`,
which waits for that import only when it is actually needed (a page that needs the engine imports it
itself anyway). The sidebar shows "detecting…" for the device until the thread is done.

The thread is started by ``app.py`` (:func:`start`), not when ``ui`` is imported: a page that Streamlit runs
without ``app.py`` (a first deep link, see :mod:`ui.navigation`) imports torchvision itself, and a second
thread importing it at the same moment can hand the page a half-initialised ``torchvision.transforms``.

These are imports by name for start-up speed, not to dodge an import circle: ``ui`` imports the engine,
never the other way round.
"""

from __future__ import annotations

import importlib
import logging
import threading
from types import ModuleType

log = logging.getLogger("cnndash.ui")

# ``cnndash.data`` and ``cnndash.augment`` import their modules on first use (the Training page's first row
# reads their torch-free listings), so the modules a page needs are named one by one.
ENGINE_MODULES = (
    "cnndash.device",
    "cnndash.jobs.registry",
    "cnndash.runs",
    "cnndash.data.pins",
    "cnndash.data.versions",
    "cnndash.data.report",
    "cnndash.data.stats",
    "cnndash.augment.store",
    "cnndash.augment.preview",
    "cnndash.training.loops",
)
engine_ready = threading.Event()


def _import_engine() -> None:
    try:
        for name in ENGINE_MODULES:
            importlib.import_module(name)
    except Exception:  # the pages import the same modules and will show the error
        log.exception("background import of the engine failed")
    finally:
        engine_ready.set()


_BACKGROUND_IMPORTS: list[threading.Thread] = []
_engine_import_started = threading.Lock()


def start() -> None:
    """Start importing the engine in the background (once per server; app.py calls this first)."""
    if _engine_import_started.acquire(blocking=False):  # never released: one import thread per process
        thread = threading.Thread(target=_import_engine, name="cnndash-import-engine", daemon=True)
        _BACKGROUND_IMPORTS.append(thread)
        thread.start()


# What the heavier pages import first and the sidebar does not: the Training page's preflight, predictions
# and Grad-CAM, the export panel (onnx), scikit-learn's metrics (Evaluation) and datasets (the built-in
# digits). :func:`warm_up` imports them in the background after the first page has been drawn, so that a
# visitor who opens Home and then another page finds them loaded. Started after, not at import, because a
# second thread importing during the first run takes the GIL from it (Home's cold paint went from 1.6 to
# 2.8 s when these were imported alongside). A warm-up, not a cache: a page that needs a module before the
# thread got there imports it itself (Python's per-module import lock: nothing is imported twice).
WARM_UP_MODULES = (
    "cnndash.training.preflight",
    "cnndash.evaluate.predict",
    "cnndash.explain.cam",
    "cnndash.export.bundle",
    "sklearn.metrics",
    "sklearn.datasets",
)
_warm_up_started = threading.Lock()


def _import_warm_up() -> None:
    engine_ready.wait()
    for name in WARM_UP_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # an optional package missing: the page that needs it says so
            log.warning("warm-up import of %s failed", name, exc_info=True)


def warm_up() -> None:
    """Start importing the heavier pages' modules in the background (once per server; app.py calls this
    after the page has run)."""
    if _warm_up_started.acquire(blocking=False):  # never released: one warm-up per process
        thread = threading.Thread(target=_import_warm_up, name="cnndash-warm-up", daemon=True)
        _BACKGROUND_IMPORTS.append(thread)
        thread.start()


def wait_for_background_imports() -> None:
    """Let the background imports finish (app.py calls this before every page but Home, which imports no
    engine).

    Two threads importing the same package for the first time can hand one of them a half-initialised
    module: torchvision's circular imports then fail with "cannot import name 'InterpolationMode' from
    partially initialized module 'torchvision.transforms'" (seen when Training opened while the warm-up
    was importing torchvision). A page waits only for imports it would otherwise do itself.
    """
    for thread in list(_BACKGROUND_IMPORTS):
        thread.join()


def engine(name: str) -> ModuleType:
    """The engine module ``cnndash.<name>`` (imported now if the background import has not got there)."""
    return importlib.import_module(f"cnndash.{name}")
