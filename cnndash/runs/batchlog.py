"""The per-batch log (``batches.csv``): written buffered, read as a bounded, thinned series.

A run logs every batch on the CPU: 500 epochs of batch 1 on 50,000 images is 25 million rows, gigabytes
as Python dicts. So a reader never holds the whole log: :func:`read_batch_series` streams it in chunks and
keeps at most ``max_points`` rows, evenly thinned (every row while the log is short, then every 2nd, 4th, …
row: the stride doubles whenever the kept rows exceed the bound), always with the newest row, plus the
wall clock at the end of each epoch. Memory is independent of the log's length; a live run's log is
re-read only from where the last read stopped.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path

# step: optimiser steps so far; seconds: wall seconds since the run started, resumed parts included (the
# time between a stop and its resume not counted); images_per_sec: over the epoch so far.
BATCH_COLUMNS = ["step", "epoch", "batch", "batches", "loss", "acc", "lr", "images_per_sec", "seconds"]
BATCH_FLUSH_ROWS, BATCH_FLUSH_SECONDS = 256, 1.0  # one append per this many rows or seconds, whichever first
MAX_POINTS = 20_000  # rows a reader keeps (the live chart's points)
READ_CHUNK = 1 << 18  # bytes parsed at a time (the reader's peak memory is a few times this)
BATCH_LOGS_CACHED = 8  # logs whose read position is remembered (a page polls a live run's log)
_INTS = 4  # the first four columns are whole numbers
_SECONDS = BATCH_COLUMNS.index("seconds")


class BatchLog:
    """The run's per-batch log, buffered: one append per :data:`BATCH_FLUSH_ROWS` rows or
    :data:`BATCH_FLUSH_SECONDS`, so logging every batch costs a list append, not a write.

    Each flush is one ``write`` of whole lines, so a reader sees complete rows (and at most a partial last
    line, which it skips). A crash loses at most the last second of rows; ``last.pt`` is older anyway.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds_before = 0.0  # wall seconds of the run before this part (a resume)
        self._rows: list[str] = []
        self._flushed = time.monotonic()

    def add(self, row: dict) -> None:
        values = (str(int(row[c])) if c in ("step", "epoch", "batch", "batches") else repr(float(row[c]))
                  for c in BATCH_COLUMNS)  # fmt: skip
        self._rows.append(",".join(values) + "\n")
        if len(self._rows) >= BATCH_FLUSH_ROWS or time.monotonic() - self._flushed >= BATCH_FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self._flushed = time.monotonic()
        if not self._rows:
            return
        new = not self.path.is_file() or self.path.stat().st_size == 0
        with open(self.path, "a") as handle:
            handle.write((",".join(BATCH_COLUMNS) + "\n" if new else "") + "".join(self._rows))
        self._rows.clear()


class NoBatchLog(BatchLog):
    """The log of a rank that writes nothing (torchrun ranks > 0)."""

    def add(self, row: dict) -> None:
        pass

    def flush(self) -> None:
        pass


def cut_batch_log(path: Path, keep_until_step: int) -> float:
    """Keep the rows up to ``keep_until_step`` (a resume redoes the later ones), streamed into a hidden
    file moved into place (readers never see half); returns the last kept row's ``seconds`` (0 if none)."""
    if not path.is_file():
        return 0.0
    seconds, dropped = 0.0, False
    tmp = path.with_name(f".{path.name}.cut.tmp")
    with open(path, "rb") as source, open(tmp, "wb") as target:
        header = source.readline()
        kept_any = False
        for line in source:
            if line.endswith(b"\n") and _step(line) <= keep_until_step:
                if not kept_any:
                    target.write(header)
                    kept_any = True
                target.write(line)
                with suppress(ValueError, IndexError):
                    seconds = float(line.split(b",")[_SECONDS])
            else:
                dropped = True
    if dropped:
        os.replace(tmp, path)
    else:
        tmp.unlink()
    return seconds


def _step(line: bytes) -> int:
    try:
        return int(line.split(b",", 1)[0])
    except ValueError:
        return 1 << 62  # a damaged row is dropped


def _parse(values: list[str]) -> tuple:
    """One row's values as numbers (``ValueError`` for a damaged row)."""
    return (*(int(v) for v in values[:_INTS]), *(float(v) for v in values[_INTS:]))


@dataclass
class _Reader:
    """How far one log has been read, and the thinned rows kept so far (tuples: small and cheap)."""

    inode: int
    max_points: int
    offset: int = 0
    count: int = 0  # rows seen
    stride: int = 1
    kept: list[tuple] = field(default_factory=list)
    last: list[str] | None = None  # the newest row's values, parsed when asked for
    last_index: int = -1
    epoch_ends: dict[int, float] = field(default_factory=dict)

    def add(self, line: str) -> None:
        values = line.split(",")
        if len(values) != len(BATCH_COLUMNS) or values[0] == BATCH_COLUMNS[0]:
            return  # the header, or a damaged row
        try:  # every row: its epoch's end; a whole row only for the rows kept (most are thinned out)
            epoch, seconds = int(values[1]), float(values[_SECONDS])
            row = _parse(values) if self.count % self.stride == 0 else None
        except ValueError:
            return
        if row is not None:
            self.kept.append(row)
            if len(self.kept) > self.max_points:
                self.kept = self.kept[::2]
                self.stride *= 2
        self.last, self.last_index = values, self.count
        self.epoch_ends[epoch] = seconds
        self.count += 1

    def read(self, path: Path, size: int) -> None:
        with open(path, "rb") as handle:
            handle.seek(self.offset)
            pending = b""
            while self.offset + len(pending) < size:
                chunk = handle.read(min(READ_CHUNK, size - self.offset - len(pending)))
                if not chunk:
                    break
                data = pending + chunk
                cut = data.rfind(b"\n") + 1  # complete lines only: a writer may be mid-append
                for line in data[:cut].decode("utf-8", "replace").splitlines():
                    self.add(line)
                self.offset += cut
                pending = data[cut:]
                if len(pending) > READ_CHUNK:  # no line is this long: skip the damage, keep memory bounded
                    self.offset += len(pending)
                    pending = b""

    def rows(self) -> list[dict]:
        out = [dict(zip(BATCH_COLUMNS, row, strict=True)) for row in self.kept]
        if self.last is not None and self.last_index % self.stride != 0:
            with suppress(ValueError):  # a damaged newest row is left out, as any damaged row
                out.append(dict(zip(BATCH_COLUMNS, _parse(self.last), strict=True)))
        return out


@dataclass(frozen=True)
class BatchSeries:
    """A per-batch log as read: thinned ``rows`` (dicts of :data:`BATCH_COLUMNS`, oldest first, the newest
    row always last), how many rows the log has (``total``), and each epoch's last ``seconds``."""

    rows: list[dict]
    total: int
    epoch_ends: dict[int, float]


_READERS: OrderedDict[tuple[str, int], _Reader] = OrderedDict()
_READERS_LOCK = threading.Lock()


def read_batch_series(path: Path, max_points: int = MAX_POINTS) -> BatchSeries:
    """The log at ``path`` as a :class:`BatchSeries` of at most ``max_points`` (+ the newest) rows; empty
    when there is none. Only complete lines count; a truncated or replaced log (a resume) is read again."""
    max_points = max(int(max_points), 2)
    key = (str(Path(path).resolve()), max_points)
    try:
        stat = Path(path).stat()
    except OSError:
        return BatchSeries([], 0, {})
    with _READERS_LOCK:
        reader = _READERS.pop(key, None)
        if reader is None or reader.inode != stat.st_ino or stat.st_size < reader.offset:
            reader = _Reader(stat.st_ino, max_points)
        if stat.st_size > reader.offset:
            reader.read(Path(path), stat.st_size)
        _READERS[key] = reader
        while len(_READERS) > BATCH_LOGS_CACHED:
            _READERS.popitem(last=False)
        return BatchSeries(reader.rows(), reader.count, dict(reader.epoch_ends))


def read_batch_log(path: Path, max_points: int = MAX_POINTS) -> list[dict]:
    """The rows of :func:`read_batch_series` (every row of a log shorter than ``max_points``)."""
    return read_batch_series(path, max_points).rows
