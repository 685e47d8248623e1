"""The per-batch log read as a bounded, thinned series: memory independent of the log's length (issue 22:
300,000 rows took +159 MiB read whole; 500 epochs × batch 1 on 50k images would take ~13 GiB)."""

from __future__ import annotations

import itertools
import tracemalloc
from pathlib import Path

from cnndash.runs import BATCH_COLUMNS, batchlog, read_batch_series


def write_log(path: Path, rows: int, start: int = 1, header: bool = True) -> None:
    with open(path, "a") as handle:
        if header:
            handle.write(",".join(BATCH_COLUMNS) + "\n")
        for step in range(start, start + rows):
            epoch, batch = 1 + (step - 1) // 1000, 1 + (step - 1) % 1000
            handle.write(f"{step},{epoch},{batch},1000,0.5,0.25,0.001,1234.5,{step / 100!r}\n")


def peak_bytes_reading(path: Path, max_points: int) -> tuple[int, object]:
    tracemalloc.start()
    try:
        series = read_batch_series(path, max_points)
        return tracemalloc.get_traced_memory()[1], series
    finally:
        tracemalloc.stop()


def test_a_long_log_is_thinned_evenly_to_the_bound_with_the_newest_row_and_every_epoch_end(tmp_path):
    path = tmp_path / "batches.csv"
    write_log(path, 100_000)
    series = read_batch_series(path, max_points=1_000)
    steps = [row["step"] for row in series.rows]
    assert series.total == 100_000 and 500 <= len(steps) <= 1_001
    assert steps[0] == 1 and steps[-1] == 100_000  # the newest row is always there
    gaps = {b - a for a, b in itertools.pairwise(steps[:-1])}
    assert len(gaps) == 1  # evenly thinned (one stride)
    assert series.epoch_ends == {e: (e * 1000) / 100 for e in range(1, 101)}  # each epoch's last row
    assert series.rows[-1] == dict(
        zip(BATCH_COLUMNS, [100_000, 100, 1000, 1000, 0.5, 0.25, 0.001, 1234.5, 1000.0], strict=True)
    )


def test_reading_memory_does_not_grow_with_the_log(tmp_path, monkeypatch):
    monkeypatch.setattr(batchlog, "READ_CHUNK", 64 * 1024)  # both logs span many chunks
    short, long = tmp_path / "short.csv", tmp_path / "long.csv"
    write_log(short, 5_000)
    write_log(long, 80_000)  # 16 times the rows
    peak_short, _ = peak_bytes_reading(short, 1_000)
    peak_long, series = peak_bytes_reading(long, 1_000)
    assert len(series.rows) <= 1_001
    assert peak_long < 1.5 * peak_short + 2**20, (peak_short, peak_long)


def test_a_live_log_read_in_pieces_gives_what_one_read_gives(tmp_path):
    path = tmp_path / "batches.csv"
    write_log(path, 3_000)
    read_batch_series(path, 500)
    write_log(path, 4_321, start=3_001, header=False)  # the trainer appended meanwhile
    pieces = read_batch_series(path, 500)
    whole = tmp_path / "whole.csv"
    write_log(whole, 7_321)
    assert pieces.rows == read_batch_series(whole, 500).rows and pieces.total == 7_321
