"""Language switch cost (issue 25): switching English ↔ 简体中文 must cost no more than an ordinary rerun.

Measured in one run, on one server, in Chromium, on the conv calculator page (the time from the action to
the end of the script run that answers it, as the browser tests wait for it):

- a change of the Layer stack's input height — an ordinary rerun of the whole page, the baseline (a click
  on the switch reruns the whole page too);
- a Stride change — a rerun of the Single layer tab alone (it is an ``st.fragment``), for scale;
- a click on the sidebar's language switch, alternating 简体中文 and English (the page, its figures and the
  navigation redrawn in the other language, every choice kept);
- the same Stride change while the page is in 简体中文 (what translation adds to every rerun).

    python benchmarks/language_switch.py [--repeats 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import cycle
from pathlib import Path

from first_paint import start_server

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import CHROMIUM, CHROMIUM_ARGS, new_context, wait_for_app  # noqa: E402


def _median_ms(action: Callable[[], None], page, repeats: int) -> float:
    action()  # warm-up: caches, the figure's first draw in this language
    wait_for_app(page)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        wait_for_app(page)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def measure(repeats: int) -> tuple[float, float, float, float]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as home, sync_playwright() as pw:
        proc, base = start_server(ROOT, Path(home))
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = new_context(browser).new_page()
            page.goto(base)  # a fresh server's first deep link may open on a "Page not found" dialog
            wait_for_app(page, timeout=120_000)
            page.goto(f"{base}/calculator?lang=en")
            wait_for_app(page, timeout=120_000)
            stride = page.locator(".st-key-conv-stride input")
            stride.wait_for(timeout=120_000)
            strides = cycle(("2", "3", "1"))

            def change_stride() -> None:
                stride.fill(next(strides))
                stride.press("Enter")

            height = page.locator(".st-key-stack-in-h input")
            heights = cycle(("30", "28", "32"))

            def change_height() -> None:
                height.fill(next(heights))
                height.press("Enter")

            languages = cycle(("简体中文", "English"))

            def switch_language() -> None:
                page.locator(".st-key-app-language").get_by_text(next(languages), exact=True).click()

            english = _median_ms(change_stride, page, repeats)
            page.get_by_role("tab", name="Layer stack").click()
            full = _median_ms(change_height, page, repeats)
            switch = _median_ms(switch_language, page, repeats)
            page.locator(".st-key-app-language").get_by_text("简体中文", exact=True).click()
            wait_for_app(page)
            page.get_by_role("heading", name="卷积计算器").first.wait_for()
            page.get_by_role("tab").first.click()
            chinese = _median_ms(change_stride, page, repeats)
        finally:
            browser.close()
            proc.terminate()
            proc.wait(15)
    return full, english, switch, chinese


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    full, english, switch, chinese = measure(args.repeats)
    print(f"Whole-page rerun (stack height)  {full:8.1f} ms")
    print(f"Language switch                  {switch:8.1f} ms   ({switch / full:.2f}x a whole-page rerun)")
    print(f"Stride change (fragment), English {english:7.1f} ms")
    print(f"Stride change (fragment), 简体中文 {chinese:6.1f} ms   ({chinese / english:.2f}x in English)")


if __name__ == "__main__":
    main()
