"""Open the app in Chromium and visit every page through the sidebar navigation."""

from __future__ import annotations

import pytest

from tests.e2e.harness import assert_no_exception, wait_for_app

PAGES = [
    ("Home", "cnndash"),
    ("Conv calculator", "Conv calculator"),
    ("Learn", "Learn"),
    ("Data & augmentation", "Data & augmentation"),
    ("Training", "Training"),
    ("Evaluation", "Evaluation"),
    ("Grad-CAM", "Grad-CAM"),
]


@pytest.mark.e2e
def test_every_page_through_sidebar(page, app_url, artifacts_dir):
    page.goto(app_url)
    wait_for_app(page)
    nav = page.get_by_test_id("stSidebarNav")
    for link_text, title in PAGES:
        nav.get_by_role("link", name=link_text, exact=True).click()
        wait_for_app(page)
        page.get_by_role("heading", name=title).first.wait_for(state="visible")
        assert_no_exception(page)
        page.screenshot(
            path=str(artifacts_dir / f"page-{link_text.replace(' ', '_').replace('&', 'and')}.png"),
            full_page=True,
        )
