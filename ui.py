"""Streamlit glue shared by the pages: the page registry, the sidebar, the user-error boundary, the one way
to keep a widget's value, and the cached model and dataset loaders every page shares.

This is the only place besides ``pages/`` and ``app.py`` that imports Streamlit; the engine lives in
``cnndash/`` and never does.
"""

from __future__ import annotations

import importlib
import logging
import sys
import threading
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from cnndash import paths

if TYPE_CHECKING:
    from streamlit.navigation.page import StreamlitPage
    from torch import nn

    from cnndash.data import ImageSet
    from cnndash.runs import Run

log = logging.getLogger("cnndash.ui")

# --------------------------------------------------------------------------------------------------
# The engine, imported in the background
#
# Importing the engine costs seconds (torch, torchvision); the Home page and the calculator's first paint
# need none of it. So this module imports no engine module at load time: a thread imports them as soon as
# the server loads ``ui``, and the few functions here that need one get it through :func:`_engine`, which
# waits for that import only when it is actually needed (a page that needs the engine imports it itself
# anyway). The sidebar shows "detecting…" for the device until the thread is done.
_ENGINE_MODULES = (
    "cnndash.device",
    "cnndash.jobs.registry",
    "cnndash.runs",
    "cnndash.data",
    "cnndash.training.loops",
)
_engine_ready = threading.Event()


def _import_engine() -> None:
    try:
        for name in _ENGINE_MODULES:
            importlib.import_module(name)
    except Exception:  # the pages import the same modules and will show the error
        log.exception("background import of the engine failed")
    finally:
        _engine_ready.set()


_BACKGROUND_IMPORTS: list[threading.Thread] = [
    threading.Thread(target=_import_engine, name="cnndash-import-engine", daemon=True)
]
_BACKGROUND_IMPORTS[0].start()

# What the heavier pages import first and the sidebar does not: the Training page's preflight, predictions
# and Grad-CAM, the export panel (onnx), scikit-learn's metrics (Evaluation) and datasets (the built-in
# digits). :func:`warm_up` imports them in the background after the first page has been drawn, so that a
# visitor who opens Home and then another page finds them loaded. Started after, not at import, because a
# second thread importing during the first run takes the GIL from it (Home's cold paint went from 1.6 to
# 2.8 s when these were imported alongside). A warm-up, not a cache: a page that needs a module before the
# thread got there imports it itself (Python's per-module import lock: nothing is imported twice).
_WARM_UP_MODULES = (
    "cnndash.training.preflight",
    "cnndash.evaluate.predict",
    "cnndash.explain.cam",
    "cnndash.export.bundle",
    "sklearn.metrics",
    "sklearn.datasets",
)
_warm_up_started = threading.Lock()


def _import_warm_up() -> None:
    _engine_ready.wait()
    for name in _WARM_UP_MODULES:
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


def wait_for_background_imports(page: StreamlitPage) -> None:
    """Let the background imports finish before ``page`` runs, unless it is Home (which imports no engine).

    Two threads importing the same package for the first time can hand one of them a half-initialised
    module: torchvision's circular imports then fail with "cannot import name 'InterpolationMode' from
    partially initialized module 'torchvision.transforms'" (seen when Training opened while the warm-up
    was importing torchvision). A page waits only for imports it would otherwise do itself.
    """
    if page.title != PAGES["home"].title:
        for thread in list(_BACKGROUND_IMPORTS):
            thread.join()


def _engine(name: str) -> ModuleType:
    """The engine module ``cnndash.<name>`` (imported now if the background import has not got there)."""
    return importlib.import_module(f"cnndash.{name}")


# One st.Page per file, created once so that st.page_link / st.switch_page can refer to them.
PAGES = {
    "home": st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    "learn": st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    "calculator": st.Page(
        "pages/conv_calculator.py",
        title="Conv calculator",
        icon=":material/calculate:",
        url_path="calculator",
    ),
    "data": st.Page(
        "pages/data_augmentation.py",
        title="Data & augmentation",
        icon=":material/photo_library:",
        url_path="data",
    ),
    "training": st.Page(
        "pages/training.py", title="Training", icon=":material/model_training:", url_path="training"
    ),
    "evaluation": st.Page(
        "pages/evaluation.py", title="Evaluation", icon=":material/fact_check:", url_path="evaluation"
    ),
    "gradcam": st.Page(
        "pages/grad_cam.py", title="Grad-CAM", icon=":material/visibility:", url_path="gradcam"
    ),
}


def __getattr__(name: str) -> Any:
    """``ui.IMAGE_TYPES``: what st.file_uploader accepts for a single image, the formats the datasets
    accept (computed on first use, so that importing ``ui`` does not import the data package)."""
    if name == "IMAGE_TYPES":
        return [extension.lstrip(".") for extension in _engine("data").IMAGE_EXTENSIONS]
    raise AttributeError(f"module 'ui' has no attribute {name!r}")


# --------------------------------------------------------------------------------------------------
# Routing


_REROUTED = "cnndash-rerouted"


def route_guard() -> None:
    """Re-route a page that Streamlit ran in its legacy ``pages/`` mode through ``app.py``.

    A fresh server whose first request is a deep link (``/training``) has not run ``app.py`` yet, so
    Streamlit still assumes the old multipage layout: it runs ``pages/training.py`` on its own, with file
    names in the sidebar, no device panel and the narrow layout — for every visitor until someone opens
    ``/``. Called first thing on every page: in that mode it switches Streamlit to ``st.navigation`` (what
    ``app.py``'s first run does, server-wide) and reruns, so this very request renders the real app on
    the same page (the legacy page and ``app.py``'s page share the URL path, hence the page id).
    Streamlit offers no public test for the mode; ``PagesManager.uses_pages_directory`` is what it checks.
    A server sets it back only on restart, but AppTest does so before every run, hence once per session.
    """
    if PagesManager.uses_pages_directory and not st.session_state.get(_REROUTED):
        log.info("first request was a deep link in legacy pages/ mode: re-routing through app.py")
        st.session_state[_REROUTED] = True  # once per session: a rerun drops the run's button clicks
        PagesManager.uses_pages_directory = False
        st.rerun()


# --------------------------------------------------------------------------------------------------
# Sidebar


@st.cache_resource(show_spinner=False)
def _device_text() -> str:
    info = _engine("device").describe_device()
    return f"**{info.kind.upper()}** — {info.description}"


# Plotly draws its toolbar (the modebar) over the top-right corner of the figure, where the figures put
# their legends (and a user clicks a legend item to hide a trace). One rule for every chart of every page,
# instead of a config or a legend position per figure: the modebar is not drawn. What it offered stays:
# drag to zoom, double-click to reset, Streamlit's own full-screen button; the figures worth keeping have
# download buttons of their own (confusion matrix, Grad-CAM overlays). Moving it into a strip above the
# figure was tried: Streamlit clips it there.
_PAGE_STYLE = """<style>
.stPlotlyChart .modebar-container { display: none !important; }
</style>"""


def page_style() -> None:
    """The app's CSS (app.py calls this once per run, before the page)."""
    st.html(_PAGE_STYLE)


def render_sidebar() -> None:
    with st.sidebar:
        st.caption("Compute device")
        if _engine_ready.is_set():
            st.markdown(_device_text())
            render_active_run()
            (data_view := sys.modules.get("ui_datacentric")) and data_view.render_label_job_sidebar()
        else:  # the first paint after a start: fill the panel in once the engine is imported
            st.fragment(_device_pending, run_every=SIDEBAR_POLL_SECONDS)()


def _device_pending() -> None:
    if not _engine_ready.is_set():
        st.markdown("detecting…")
        return
    st.rerun(scope="app")  # redraw the whole sidebar (device and active run) without polling


SIDEBAR_POLL_SECONDS = 1.5  # the Training page's live view refreshes at the same pace


def render_active_run() -> None:
    """Show the training run in progress, if any, refreshed as the Training page's live view is."""
    jobs = sys.modules.get("cnndash.jobs.registry")
    if jobs is None or jobs.get_registry().active() is None:  # no jobs module: no job was ever started
        return
    st.fragment(_active_run_panel, run_every=SIDEBAR_POLL_SECONDS)()


def _active_run_panel() -> None:
    registry = _engine("jobs.registry").get_registry()
    job = registry.active() or registry.latest()
    if job is None:
        return
    snap = job.snapshot()  # one snapshot for the text and the bar, as on the Training page
    st.caption("Active training run" if job.alive else "Last training run")
    st.markdown(f"`{job.run_name}` — {text(snap.status_text())}")
    st.progress(min(max(snap.fraction, 0.0), 1.0))


# --------------------------------------------------------------------------------------------------
# Text from uploads

# What Streamlit's Markdown (in st.markdown, alerts, captions and widget labels) gives a meaning inline:
# CommonMark's emphasis, code, links and images ('[' starts both, so '(' and ')' are harmless), HTML and
# entities, GFM's strikethrough and tables, and '$' (LaTeX). A ':' followed by a non-space can open an
# emoji, a :material/…: icon or a :red[…] directive. At the start of a line '#', '+', '-', '>', '=' and
# '.' after digits also count (headings, lists, quotes), so a leading one is escaped as well.
_MARKDOWN_SPECIALS = frozenset("\\`*_{}[]<>|~$&")
_LINE_START_SPECIALS = frozenset("#+->=")


def text(value: object) -> str:
    """``value`` as literal text inside Markdown: class names, file names and other strings from uploads
    are shown as they are, never read as Markdown, HTML, icons or LaTeX. Newlines become spaces."""
    plain = " ".join(str(value).splitlines())
    out = []
    for k, ch in enumerate(plain):
        opens_colon = ch == ":" and k + 1 < len(plain) and not plain[k + 1].isspace()
        out.append("\\" + ch if ch in _MARKDOWN_SPECIALS or opens_colon else ch)
    escaped = "".join(out)
    if escaped[:1] in _LINE_START_SPECIALS:
        escaped = "\\" + escaped
    elif escaped.split(".", 1)[0].isdigit():
        escaped = escaped.replace(".", "\\.", 1)
    return escaped


# --------------------------------------------------------------------------------------------------
# Errors and widget state


@contextmanager
def user_errors() -> Iterator[None]:
    """Show errors a user can cause (``ValueError`` and subclasses) as ``st.error``, never a traceback."""
    try:
        yield
    except ValueError as exc:
        log.info("user error: %s", exc)
        st.error(text(exc), icon=":material/error:")


def keep(key: str, default: Any = None, *, options: Collection | None = None) -> dict[str, Any]:
    """The keyword arguments of a widget whose value survives while it is not drawn.

    Streamlit forgets a widget that a run does not draw (a closed tab, the other section, another page);
    ``st.radio("Normalise", choices, **ui.keep("eval-normalize", "counts"))`` keeps it for the session.
    ``default`` is its first value, set once through session state — so the widget gets no ``value=`` /
    ``index=`` of its own, and code may still set ``st.session_state[key]`` before drawing it.
    ``options``: a kept single choice that is no longer among them (a deleted run or dataset) is dropped.
    """
    state = st.session_state
    if options is not None and key in state and state[key] not in options:
        del state[key]
    if default is not None and key not in state:
        state[key] = default
    return {"key": key, "persist_state": "session"}


# --------------------------------------------------------------------------------------------------
# Cached loaders: one model and one dataset per checkpoint / stored dataset, shared by every page and
# every browser session (read-only objects, hence st.cache_resource).


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _model(run_path: str, which: str, fingerprint: str) -> nn.Module:
    return _engine("runs").load_run(run_path).load_model(which, device="cpu")


def load_model(run: Run, which: str = "best") -> nn.Module:
    """``run``'s trained model (eval mode, CPU), cached until its checkpoint's bytes change.

    Raises :class:`cnndash.runs.RunError` for a missing or unreadable checkpoint.
    """
    return _model(str(run.path), which, run.fingerprint(which))


def dataset_stamp(name: str) -> int:
    """Changes when the stored dataset behind ``name`` is replaced (0 for a built-in): a cache-key part."""
    data = _engine("data")
    if name in data.BUILTIN_DATASETS:
        return 0
    for path in (data.datasets_dir() / name, Path(name)):
        if path.exists():
            return path.stat().st_mtime_ns
    return 0


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=6)
def _dataset(name: str, val_fraction: float, seed: int, data_dir: str, stamp: int) -> ImageSet:
    return _engine("data").load_dataset(name, data_dir=Path(data_dir), val_fraction=val_fraction, seed=seed)


def load_dataset(name: str, val_fraction: float | None = None, seed: int | None = None) -> ImageSet:
    """The dataset split as training splits it (same defaults), cached until the stored dataset changes."""
    defaults = _engine("training.config").TrainConfig
    val_fraction = defaults.val_fraction if val_fraction is None else val_fraction
    seed = defaults.seed if seed is None else seed
    return _dataset(name, float(val_fraction), int(seed), str(paths.data_dir()), dataset_stamp(name))


def run_dataset(run: Run) -> ImageSet:
    """``run``'s dataset, split exactly as in its training (its validation fraction and seed)."""
    config = run.config
    return load_dataset(
        str(config["dataset"]),
        config.get("val_fraction"),
        config.get("seed"),
    )
