"""Issue 22's bounds on runs, measured against the old behaviour in the same run.

- A 300,000-row ``batches.csv``: extra RSS of reading it whole into dicts (the old reader) vs
  :func:`cnndash.runs.read_batch_series` (bounded, thinned), each in a fresh process.
- ``predict`` on a zip of 32,000 tiny images: reading every member when each read re-opens the archive
  (the old way; timed on a sample and extrapolated) vs :func:`cnndash.evaluate.predict_files.image_sources`
  (opened once), and the whole prediction with a LeNet run.

    python benchmarks/runs_bounds.py [--rows 300000] [--entries 32000]
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHILD = """
import sys, time
from pathlib import Path
def rss():
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmRSS")) / 1024
which, path = sys.argv[1], Path(sys.argv[2])
from cnndash.runs import BATCH_COLUMNS, read_batch_series
before, started = rss(), time.perf_counter()
if which == "old":  # what cnndash did before: every row as a dict
    rows = []
    for line in path.read_text().splitlines()[1:]:
        values = line.split(",")
        rows.append({c: (int(v) if i < 4 else float(v)) for i, (c, v) in enumerate(zip(BATCH_COLUMNS, values))})
    kept = len(rows)
else:
    kept = len(read_batch_series(path).rows)
print(f"{rss() - before:.0f} {time.perf_counter() - started:.2f} {kept}")
"""


def write_batch_log(path: Path, rows: int) -> None:
    from cnndash.runs import BATCH_COLUMNS

    with open(path, "w") as handle:
        handle.write(",".join(BATCH_COLUMNS) + "\n")
        for step in range(1, rows + 1):
            handle.write(f"{step},{1 + step // 1000},{step % 1000 + 1},1000,{0.5 + step % 7 / 10!r},0.25,0.001,"
                         f"1234.5,{step * 0.01!r}\n")  # fmt: skip


def batch_log(rows: int, folder: Path) -> None:
    path = folder / "batches.csv"
    write_batch_log(path, rows)
    print(f"batches.csv: {rows:,} rows, {path.stat().st_size / 2**20:.1f} MiB")
    for which in ("old", "new"):
        out = subprocess.run([sys.executable, "-c", CHILD, which, str(path)], capture_output=True, text=True,
                             cwd=ROOT, check=True).stdout.split()  # fmt: skip
        label = "read whole (before)" if which == "old" else "bounded series (after)"
        print(f"  {label:24s} +{out[0]:>4} MiB RSS  {out[1]:>6} s  {int(out[2]):>7,} rows kept")


def tiny_zip(path: Path, entries: int) -> None:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (8, 8), 128).save(buffer, "PNG")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for i in range(entries):
            archive.writestr(f"c{i % 2}/{i:05d}.png", buffer.getvalue())


def zip_predict(entries: int, folder: Path) -> None:
    from cnndash.evaluate.predict_files import image_sources, predict_sources
    from cnndash.training.loops import TrainConfig, train

    archive = folder / "tiny.zip"
    tiny_zip(archive, entries)
    print(f"zip: {entries:,} entries, {archive.stat().st_size / 2**20:.1f} MiB")
    names = [m.filename for m in zipfile.ZipFile(archive).infolist()]
    sample = names[:: max(1, len(names) // 100)][:100]
    started = time.perf_counter()
    for name in sample:  # before: every member re-opened the archive and parsed its whole directory
        with zipfile.ZipFile(archive) as opened:
            opened.read(name)
    per_member = (time.perf_counter() - started) / len(sample)
    print(f"  reading every member, re-opened each time (before): {per_member * 1000:.1f} ms each -> "
          f"~{per_member * entries / 3600:.1f} h for all {entries:,}")  # fmt: skip
    started = time.perf_counter()
    sources = image_sources([archive])
    for source in sources:
        source.read()
    print(f"  reading every member, opened once (after): {time.perf_counter() - started:.1f} s for all")
    run = folder / "run"
    train(TrainConfig(dataset="digits", model="lenet", epochs=1, tensorboard=False), run)
    started = time.perf_counter()
    probs = predict_sources(run, sources, batch_size=256)
    print(f"  predict on the whole zip (after): {time.perf_counter() - started:.1f} s, {len(probs):,} rows")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--entries", type=int, default=32_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batch_log(args.rows, Path(tmp))
        zip_predict(args.entries, Path(tmp))


if __name__ == "__main__":
    main()
