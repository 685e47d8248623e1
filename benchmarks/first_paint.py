"""Time to first paint per page in Chromium: from ``page.goto`` to the server's first finished script run
(the app root then says ``notRunning``), cold and warm.

- cold: the page is the FIRST request of a freshly started ``streamlit run app.py`` (imports, caches and
  the legacy-mode re-route all count);
- warm: the same page opened again in a new browser session of that server.

Besides the wall-clock seconds, each row gives the CPU seconds the server process spent from its start to
the cold first paint (Linux: ``/proc/<pid>/stat``): on a machine shared with other work the wall clock
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


def first_paint(browser, url: str) -> float:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(script=RUN_TRACKER)
    try:
        page = context.new_page()
        start = time.perf_counter()
        page.goto(url)
        page.wait_for_function(FIRST_RUN_FINISHED, timeout=180_000, polling=20)
        return time.perf_counter() - start
    finally:
        context.close()


def measure(repo: Path, pages: list[str], repeats: int) -> dict[str, tuple[float, float, float]]:
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        for name in pages:
            cold, warm, cpu = [], [], []
            for _ in range(repeats):
                with tempfile.TemporaryDirectory() as tmp:
                    proc, base = start_server(repo, Path(tmp))
                    try:
                        url = f"{base}/{PAGES[name]}"
                        cold.append(first_paint(browser, url))
                        cpu.append(cpu_seconds(proc.pid))
                        warm.append(first_paint(browser, url))
                    finally:
                        proc.terminate()
                        proc.wait(15)
            out[name] = (statistics.median(cold), statistics.median(warm), statistics.median(cpu))
            row = f"{name:<12} cold {out[name][0]:6.2f} s   warm {out[name][1]:6.2f} s"
            print(f"{row}   server CPU to cold paint {out[name][2]:6.2f} s", flush=True)
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
    print(f"first paint of {args.repo} (time to the first finished script run, Chromium)")
    measure(args.repo.resolve(), pages, args.repeats)


if __name__ == "__main__":
    main()
