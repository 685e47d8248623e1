"""AppTest smoke test: every page renders through the real navigation without an exception."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

PAGE_FILES = [
    "pages/home.py",
    "pages/conv_calculator.py",
    "pages/data_augmentation.py",
    "pages/training.py",
    "pages/evaluation.py",
    "pages/grad_cam.py",
]


def run_page(page: str, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    return at


@pytest.mark.parametrize("page", PAGE_FILES)
def test_page_renders_without_exception(page):
    at = run_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, f"{page} shows no title"


def test_sidebar_shows_device():
    at = run_page("pages/home.py")
    text = " ".join(m.value for m in at.sidebar.markdown)
    assert "CPU" in text or "CUDA" in text or "MPS" in text
