"""Writing a run folder: the trainer's only way to touch it."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from cnndash.runs.checkpoint import Checkpoint
from cnndash.runs.files import RunError, mark_active, save_atomic, write_json_atomic, write_status

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
EXTRA_METRIC_COLUMNS = ["lr", "seconds", "images_per_sec"]
BATCH_LOG = "batches.csv"  # one row per reported training batch (every batch on the CPU, every 10th on GPUs)
# step: optimiser steps so far; seconds: wall seconds since the run started, resumed parts included (the
# time between a stop and its resume not counted); images_per_sec: over the epoch so far.
BATCH_COLUMNS = ["step", "epoch", "batch", "batches", "loss", "acc", "lr", "images_per_sec", "seconds"]
PROCESS_LOG = "train.log"  # a torchrun run started from the app: the output of torchrun and every rank
BATCH_FLUSH_ROWS, BATCH_FLUSH_SECONDS = 256, 1.0  # one append per this many rows or seconds, whichever first


class BatchLog:
    """The run's per-batch log (``batches.csv``), buffered: one append per :data:`BATCH_FLUSH_ROWS` rows or
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


class _NoBatchLog(BatchLog):
    def add(self, row: dict) -> None:
        pass

    def flush(self) -> None:
        pass


class RunWriter:
    """Everything the trainer writes into a run folder, each file written atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".cnndash-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RunError(
                f"Cannot write the run folder {self.path} ({exc.strerror or type(exc).__name__}); choose a "
                "folder you can write to."
            ) from exc

    @contextmanager
    def training(self) -> Iterator[RunWriter]:
        """Mark the run as being trained by this process for the block (see ``files.owner_alive``)."""
        mark_active(self.path, True)
        try:
            yield self
        finally:
            mark_active(self.path, False)

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.path / "config.json", config)

    def write_dataset_info(self, info: dict) -> None:
        write_json_atomic(self.path / "dataset.json", info)

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        write_status(self.path, status, message, **extra)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.path / "summary.json", summary)

    def has_checkpoint(self, which: str) -> bool:
        return (self.path / f"{which}.pt").is_file()

    def save_checkpoint(self, checkpoint: Checkpoint, *which: str) -> None:
        """Save ``checkpoint`` as each of ``which`` (``"last"``, ``"best"``)."""
        data = checkpoint.to_dict()
        for name in which:
            save_atomic(data, self.path / f"{name}.pt")

    def append_metrics(self, row: dict) -> None:
        """Add one epoch's row to ``metrics.csv`` (flushed to disk: a crash keeps every finished epoch)."""
        path = self.path / "metrics.csv"
        columns = METRIC_COLUMNS + EXTRA_METRIC_COLUMNS
        new = not path.is_file() or path.stat().st_size == 0
        with open(path, "a") as handle:
            if new:
                handle.write(",".join(columns) + "\n")
            values = [str(int(row[c])) if c == "epoch" else repr(float(row[c])) for c in columns]
            handle.write(",".join(values) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop rows after ``last_epoch`` (a resumed run redoes them)."""
        path = self.path / "metrics.csv"
        if not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = lines[:1] + [line for line in lines[1:] if line and int(line.split(",")[0]) <= last_epoch]
        path.write_text("\n".join(kept) + "\n")

    def batch_log(self, keep_until_step: int) -> BatchLog:
        """The per-batch log, keeping only the rows up to ``keep_until_step``: the step of the checkpoint a
        resumed run continues from (0 for a new run, or a torchrun restart that starts over). Its
        ``seconds_before`` is the last kept row's ``seconds``: the run's wall time before this part."""
        path = self.path / BATCH_LOG
        log = BatchLog(path)
        if not path.is_file():
            return log
        lines = path.read_text().splitlines(keepends=True)
        kept = [line for line in lines[1:] if line.endswith("\n") and _step(line) <= keep_until_step]
        if len(kept) != len(lines) - 1:  # rewritten whole and moved into place: readers never see half
            tmp = path.with_name(f".{BATCH_LOG}.tmp")
            tmp.write_text("".join(lines[:1] + kept) if kept else "")
            os.replace(tmp, path)
        if kept:
            with suppress(ValueError, IndexError):
                log.seconds_before = float(kept[-1].split(",")[BATCH_COLUMNS.index("seconds")])
        return log


def _step(line: str) -> int:
    try:
        return int(line.split(",", 1)[0])
    except ValueError:
        return 1 << 62  # a damaged row is dropped


class NullRunWriter(RunWriter):
    """The writer of a distributed run's ranks other than 0: the same calls, nothing written.

    Only rank 0 writes the run folder, so the folder needs to be on storage rank 0 can write, and two
    processes never race for one file.
    """

    def create(self) -> None:
        pass

    @contextmanager
    def training(self) -> Iterator[RunWriter]:
        yield self

    def write_config(self, config: dict) -> None:
        pass

    def write_dataset_info(self, info: dict) -> None:
        pass

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        pass

    def write_summary(self, summary: dict) -> None:
        pass

    def save_checkpoint(self, checkpoint: Checkpoint, *which: str) -> None:
        pass

    def append_metrics(self, row: dict) -> None:
        pass

    def truncate_metrics(self, last_epoch: int) -> None:
        pass

    def batch_log(self, keep_until_step: int) -> BatchLog:
        return _NoBatchLog(self.path / BATCH_LOG)
