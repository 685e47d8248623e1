"""Time to first paint per page in Chromium: from ``page.goto`` to the page's title, to its first usable
control (``USABLE``: the Training form's Dataset box) and to the server's first finished script run (the app
root then says ``notRunning``), cold and warm.

- cold: the page is the FIRST request of a freshly started ``streamlit run app.py`` (imports, caches and
  the legacy-mode re-route all count);
- warm: the same page opened again in a new browser session of that server.

Besides the wall-clock seconds, each row gives the CPU seconds the server process spent from its start to
the usable control and to the cold first paint (Linux: ``/proc/<pid>/stat``): on a machine shared with other work the wall clock
swings by seconds from one run to the next, the server's own CPU time much less.

Figures (2 cores shared with other jobs, load average 5-7; no runs on disk; two rounds, base = the commit
before the first-paint changes of issue 13 point 10, served by this script with ``--repo``, alternated with
the new one; cold wall s / server CPU s to the cold paint, per round):

    page        base round 1   base round 2   new round 1    new round 2
    home         1.7 / 1.5      2.8 / 1.7      2.1 / 1.3      1.9 / 1.5
    training    13.6 / 7.1     10.5 / 8.0      8.1 / 5.7     11.1 / 7.9
    evaluation  19.3 / 8.4      8.7 / 8.3      8.1 / 6.0     13.0 / 8.2
    gradcam      9.6 / 6.6      7.1 / 6.3      6.5 / 4.4     10.4 / 5.2

Quieter machine, after the session (nothing else running; base = 78a86e8, the session's start; "new"
also has onnx imported only when an ONNX export runs), two alternated rounds, cold wall s / server CPU s:

    page        base round 1   base round 2   new round 1    new round 2
    home         1.6 / 1.4      1.5 / 1.4      1.5 / 1.4      1.8 / 1.9
    training     6.8 / 6.4      7.8 / 7.4      6.5 / 5.9      6.3 / 6.0
    evaluation   6.7 / 6.5      8.1 / 8.0      6.1 / 5.8      6.5 / 6.4
    gradcam      6.7 / 6.7      6.9 / 6.9      5.2 / 5.3      5.6 / 5.6

Warm first paints were 1.4-3.6 s in both (1.3-1.9 s on the quiet machine). What changed: no ``gc.collect(2)`` after every script run
(``runner.postScriptGC = false``; 0.3-1 s with torch loaded, paid twice by a deep link's re-route), and
scikit-learn (1.2 s) imported only where the classification report is built, not by every page that
imports ``cnndash.evaluate.metrics``; after the first page, ``ui.warm_up`` imports the heavier pages' modules in the
background (helps the second page a visitor opens, not these cold figures). What remains on the cold
path: torch (~1.5 s), torchvision (~1.4 s, half of it ``torch._dynamo`` imported by ``torchvision.ops``)
and, on Training, scikit-learn for the built-in digits (1.2 s). onnx (0.8 s) is no longer on it.

Issue 24 (a first deep link to Training; base = 53c5cf8, the branch's start, served with ``--repo`` from a
``git archive`` export, alternated with the new one in the same minutes; one fresh server each; 2 shared
cores at load average 11-17, so every figure swings by seconds), title / usable / cold s:

    round   base                  new
    1       27.1 / 27.1 / 31.0    3.8 / 22.2 / 30.3
    2       10.7 / 10.8 / 13.0    1.8 / 17.2 / 23.0

What the page waited for (timestamps in the server, load ~7): 13.6 s of a 16.6 s usable time was the page
file's own imports in the legacy run that re-routes a deep link — torch (5.6 s under that load) and
torchvision (5.3 s, of which torch._dynamo 4.8 s through torchvision.ops) pulled in by the form's engine
imports (``TrainConfig`` through ``cnndash.models``; ``cnndash.augment`` through torchvision.transforms);
the Dataset box was drawn 0.2 s after them and the data's suggestion (the digits' decode, scikit-learn)
comes after it behind a spinner. So the page now draws its title, tabs and introduction before any engine
import (``ui.route_guard`` first, the tabs' parts in ``ui/training/page.py`` imported behind a spinner, and
``app.py`` does not wait for the engine before Training): the title shows in 1.8-3.8 s instead of 10.7-27 s.
The form itself still waited for PyTorch. Server CPU to the cold paint grew from 6.5-6.8 to 7.2-8.0 s (the
data's suggestion, the finder's and the search's views; Optuna).

Issue 24, the form's first row: the Dataset and pipeline boxes are drawn before PyTorch is imported
(``ui/training/form_start.py``, from the torch-free listings ``cnndash.data.names`` and
``cnndash.augment.names``; ``cnndash.data`` and ``cnndash.augment`` import their modules on first use;
``tests/test_first_paint.py`` fails when the page's first imports pull torch), the model box and everything
the suggestion sets follow behind the spinner. Base = 980023e in a ``git worktree``, served with ``--repo``,
alternated with the new one; 2 cores shared with another engineer's tests and a benchmark, load average
3.7-6.6. Title / usable / cold wall s, then the server's CPU s to usable / to the cold paint:

    page      run               base                               new
    home      median of 3, 1    2.5 / 2.5 / 2.5    1.7 / 1.7       3.3 / 3.6 / 3.6    1.8 / 1.8
    home      median of 3, 2    3.0 / 3.1 / 3.1    1.9 / 1.9       2.1 / 2.4 / 2.4    1.6 / 1.6
    training  median of 3, 1    2.3 / 10.5 / 13.6  5.7 / 7.4       2.2 / 2.2 / 17.3   1.2 / 7.6
    training  median of 3, 2    2.2 / 6.5 / 8.3    5.1 / 6.3       2.2 / 2.3 / 12.5   1.2 / 6.6
    training  single, 3         2.4 / 10.4 / 13.6  5.2 / 6.8       2.1 / 2.1 / 13.9   1.3 / 6.8
    training  single, 4         2.0 / 8.5 / 10.2   5.6 / 6.9       2.0 / 2.0 / 10.5   1.3 / 6.7
    training  single, 5         2.2 / 9.1 / 11.7   5.4 / 6.8       2.2 / 3.0 / 11.9   1.7 / 6.7

The Dataset box now shows 0.03-0.9 s after the title (2.0-3.0 s from the request) instead of 6.5-10.5 s, at
1.2-1.7 s of server CPU instead of 5.1-5.7 s; the first script run ends as before (the same CPU to the cold
paint; its wall clock swings by seconds with the load, both ways). Home is unchanged (its spread is the
load's). Warm first paints: 2.1-3.4 s in both.

Usage: ``python benchmarks/first_paint.py [--repo PATH] [--pages home,training] [--repeats N]``; ``--repo``
measures another checkout (e.g. an older commit in a git worktree) with this script. Prints one row per
page with the median seconds; needs Debian's chromium (``CNNDASH_CHROMIUM``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.harness import (  # noqa: E402 - after the path set-up above
    CHROMIUM,
    CHROMIUM_ARGS,
    RUN_TRACKER,
    SERVER_READY_LINE,
    free_port,
)

PAGES = {
    "home": "",
    "calculator": "calculator",
    "data": "data",
    "training": "training",
    "evaluation": "evaluation",
    "gradcam": "gradcam",
}
FIRST_RUN_FINISHED = "() => window.__cnndashRuns && window.__cnndashRuns.finished > 0"
# What a person can use first on a page (``--usable``): the time until it is visible is "usable content",
# which a page can reach before its first script run has finished (the rest behind a spinner).
USABLE = {"training": ".st-key-train-dataset"}


def start_server(repo: Path, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(os.environ, CNNDASH_DATA_DIR=str(home / "data"), CNNDASH_RUNS_DIR=str(home / "runs"))
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
    cmd += ["--server.port", str(port), "--server.address", "127.0.0.1", "--server.fileWatcherType", "none"]
    cmd += ["--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(
        cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    ready = threading.Event()

    def drain() -> None:
        for line in proc.stdout:
            if SERVER_READY_LINE in line:
                ready.set()
        ready.set()

    threading.Thread(target=drain, daemon=True).start()
    if not ready.wait(90) or proc.poll() is not None:
        proc.kill()
        raise RuntimeError("streamlit did not start")
    return proc, f"http://127.0.0.1:{port}"


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (0.0 where /proc is not there)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def first_paint(
    browser, url: str, usable: str | None = None, pid: int = 0
) -> tuple[float, float, float, float]:
    """Seconds from ``page.goto`` to the page's title (its ``h1``) being visible, to ``usable`` (that element's
    selector; the first finished run when None) being visible, and to the first finished script run; and the
    server's (process ``pid``) CPU seconds when ``usable`` showed."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(script=RUN_TRACKER)
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_selector("h1", state="visible", timeout=180_000)
        title = time.perf_counter() - start
        seen = None
        if usable is not None:
            page.wait_for_selector(usable, state="visible", timeout=180_000)
            seen = time.perf_counter() - start
            cpu = cpu_seconds(pid)
        page.wait_for_function(FIRST_RUN_FINISHED, timeout=180_000, polling=20)
        done = time.perf_counter() - start
        if seen is None:
            seen, cpu = done, cpu_seconds(pid)
        return title, seen, done, cpu
    finally:
        context.close()


def measure(repo: Path, pages: list[str], repeats: int) -> dict[str, tuple[float, ...]]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name in pages:
            title, usable, cold, warm, cpu, cpu_usable = [], [], [], [], [], []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    proc, base = start_server(repo, Path(tmp))
                    try:
                        url = f"{base}/{PAGES[name]}"
                        shown, seen, done, used = first_paint(browser, url, USABLE.get(name), proc.pid)
                        cpu_usable.append(used)
                        title.append(shown)
                        usable.append(seen)
                        cold.append(done)
                        cpu.append(cpu_seconds(proc.pid))
                        warm.append(first_paint(browser, url)[2])
                    finally:
                        proc.terminate()
                        proc.wait(15)
            out[name] = tuple(statistics.median(xs) for xs in (title, usable, cold, warm, cpu, cpu_usable))
            row = f"{name:<12} title {out[name][0]:6.2f} s   usable {out[name][1]:6.2f} s   cold {out[name][2]:6.2f} s"
            row += f"   warm {out[name][3]:6.2f} s   server CPU to usable {out[name][5]:6.2f} s"
            print(f"{row}, to cold paint {out[name][4]:6.2f} s", flush=True)
        browser.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=ROOT, help="checkout to serve (default: this one)")
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated: " + ", ".join(PAGES))
    parser.add_argument("--repeats", type=int, default=1, help="fresh servers per page (median)")
    args = parser.parse_args()
    pages = [p for p in args.pages.split(",") if p]
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        parser.error(f"unknown page(s) {', '.join(unknown)}; choose from {', '.join(PAGES)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"first paint of {args.repo} (time to the first finished script run, Chromium; load {load:.1f})")
    measure(args.repo.resolve(), pages, args.repeats)


if __name__ == "__main__":
    main()
