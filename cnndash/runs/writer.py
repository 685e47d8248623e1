"""Writing a run folder: the trainer's only way to touch it."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from cnndash.runs.batchlog import BATCH_COLUMNS, BATCH_FLUSH_ROWS, BatchLog, NoBatchLog, cut_batch_log
from cnndash.runs.checkpoint import Checkpoint
from cnndash.runs.files import RunError, read_json, save_atomic, write_json_atomic, write_status
from cnndash.runs.layout import (
    BATCH_LOG,
    CONFIG_FILE,
    DATASET_FILE,
    METRICS_FILE,
    PROCESS_LOG,
    RENDEZVOUS_PREFIX,
    SUMMARY_FILE,
    checkpoint_file,
    has_checkpoint,
    leftovers,
)
from cnndash.runs.lease import Lease, holding, live_owner
from cnndash.runs.quota import check_new_run, checkpoint_check

__all__ = ["BATCH_COLUMNS", "BATCH_FLUSH_ROWS", "BATCH_LOG", "EXTRA_METRIC_COLUMNS", "METRIC_COLUMNS", "PROCESS_LOG", "BatchLog",
           "NullRunWriter", "RunWriter"]  # fmt: skip

METRIC_COLUMNS = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc"]
EXTRA_METRIC_COLUMNS = ["lr", "seconds", "images_per_sec"]
LEFTOVER_AGE_S = 60.0  # a hidden .tmp file this old belongs to nobody alive (writes take well under this)


class RunWriter:
    """Everything the trainer writes into a run folder, each file written atomically."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._lease: Lease | None = None

    def create(self) -> None:
        """Create the folder (refused while the runs folder is over its quota, or not writable)."""
        if not self.path.is_dir():
            check_new_run(self.path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".cnndash-write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise RunError(
                "Cannot write the run folder {path} ({exc_strerror}); choose a folder you can write to.",
                path=self.path,
                exc_strerror=exc.strerror or type(exc).__name__,
            ) from exc

    @contextmanager
    def training(self, owner: str | None = None) -> Iterator[RunWriter]:
        """Hold the run's lease for the block (``owner``: its token, default a fresh one): the run reads
        ``running`` while it is renewed, and a stop request naming it is seen by :meth:`stop_requested`.
        A run whose lease another live trainer holds is refused (:class:`RunError`)."""
        with holding(self.path, owner) as lease:
            # This trainer owns the folder now: what a killed writer left half-written goes (not the files
            # another process is writing this minute, such as a page caching predictions).
            for leftover in leftovers(self.path, older_than=LEFTOVER_AGE_S):
                if not leftover.name.startswith(RENDEZVOUS_PREFIX):  # torchrun's agent still reads it
                    leftover.unlink(missing_ok=True)
            self._lease = lease
            try:
                yield self
            finally:
                self._lease = None

    @property
    def owner(self) -> str | None:
        """The token of the lease this writer holds (None outside :meth:`training`)."""
        return self._lease.owner if self._lease is not None else None

    def stop_requested(self) -> bool:
        """A stop request (``runs stop``, the app's Stop) names this writer's lease."""
        return self._lease is not None and self._lease.stop_requested()

    def write_config(self, config: dict) -> None:
        write_json_atomic(self.path / CONFIG_FILE, config)

    def write_dataset_info(self, info: dict) -> None:
        write_json_atomic(self.path / DATASET_FILE, info)

    def write_status(self, status: str, message: str = "", **extra: Any) -> None:
        write_status(self.path, status, message, **extra)

    def write_summary(self, summary: dict) -> None:
        write_json_atomic(self.path / SUMMARY_FILE, summary)

    def has_checkpoint(self, which: str) -> bool:
        return has_checkpoint(self.path, which)

    def saved_config(self) -> dict | None:
        """The run's saved ``config.json`` (None when missing or unreadable)."""
        config = read_json(self.path / CONFIG_FILE)
        return config if isinstance(config, dict) else None

    def load_checkpoint(self, which: str) -> Checkpoint:
        """The checkpoint ``which`` as saved (torch's own errors for a missing or foreign file)."""
        data = torch.load(checkpoint_file(self.path, which), map_location="cpu", weights_only=True)
        return Checkpoint.from_dict(data)

    def check_not_training(self, owner: str | None = None) -> None:
        """:class:`RunError` while a trainer other than ``owner`` holds the run's lease (a resume would fight
        it)."""
        if live_owner(self.path) not in (None, owner or self.owner):
            raise RunError(
                "Run {path_name} is being trained right now; stop it first (python -m cnndash runs stop "
                "{path_name2}) or wait for it to end.",
                path_name=repr(self.path.name),
                path_name2=self.path.name,
            )

    def save_checkpoint(self, checkpoint: Checkpoint, *which: str) -> None:
        """Save ``checkpoint`` as each of ``which`` (``"last"``, ``"best"``); refused (``RunsQuotaError``, the
        previous file kept) when it would take the runs folder over its quota."""
        data = checkpoint.to_dict()
        for name in which:
            target = checkpoint_file(self.path, name)
            save_atomic(data, target, check=checkpoint_check(target))

    def append_metrics(self, row: dict) -> None:
        """Add one epoch's row to ``metrics.csv`` (flushed to disk: a crash keeps every finished epoch)."""
        path = self.path / METRICS_FILE
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
        """Drop rows after ``last_epoch`` (a resumed run redoes them); at most one row per epoch."""
        path = self.path / METRICS_FILE
        if not path.is_file():
            return
        lines = path.read_text().splitlines()
        kept = lines[:1] + [line for line in lines[1:] if line and _epoch(line) <= last_epoch]
        write_text_atomic(path, "\n".join(kept) + "\n")

    def batch_log(self, keep_until_step: int) -> BatchLog:
        """The per-batch log, keeping only the rows up to ``keep_until_step``: the step of the checkpoint a
        resumed run continues from (0 for a new run, or a torchrun restart that starts over). Its
        ``seconds_before`` is the last kept row's ``seconds``: the run's wall time before this part."""
        log = BatchLog(self.path / BATCH_LOG)
        log.seconds_before = cut_batch_log(log.path, keep_until_step)
        return log


def _epoch(line: str) -> int:
    try:
        return int(line.split(",", 1)[0])
    except ValueError:
        return 1 << 62  # a damaged row is dropped


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.cut.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class NullRunWriter(RunWriter):
    """The writer of a distributed run's ranks other than 0: the same calls, nothing written.

    Only rank 0 writes the run folder, so the folder needs to be on storage rank 0 can write, and two
    processes never race for one file.
    """

    def create(self) -> None:
        pass

    @contextmanager
    def training(self, owner: str | None = None) -> Iterator[RunWriter]:
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
        return NoBatchLog(self.path / BATCH_LOG)
