"""Run folders on disk: the only code that knows their layout (:mod:`cnndash.runs.layout`).

A run is one folder under the runs directory (``cnndash.paths.runs_dir()``, default ``./runs``):

- ``config.json``   — the resolved :class:`cnndash.training.loops.TrainConfig` (everything needed to rerun);
- ``dataset.json``  — classes, channels, image size and the normalisation the model was trained with;
- ``metrics.csv``   — one row per finished epoch: ``epoch,train_loss,train_acc,val_loss,val_acc`` (+ extras);
- ``batches.csv``   — one row per reported training batch (step, loss, accuracy, LR, wall seconds), the
  whole run's, resumed parts included; read back as a bounded, thinned series (:mod:`cnndash.runs.batchlog`);
- ``last.pt`` / ``best.pt`` — a :class:`Checkpoint` stored as a dict of plain types
  (``torch.load(weights_only=True)`` reads it);
- ``summary.json``  — ``val_accuracy``, ``epochs``, ``device``, ``images_per_sec``, ``seconds``, ``best_epoch``…;
- ``status.json``   — ``running`` | ``finished`` | ``stopped`` | ``failed`` with a message;
- ``lease.json``    — while the run trains: the lease its trainer renews (:mod:`cnndash.runs.lease`). A run
  is ``running`` exactly while it is fresh; a ``running`` status without it reads ``interrupted``, a folder
  that cannot be read as a run is listed as ``broken``; ``stop.json`` asks the lease's owner to stop.

:class:`RunWriter` writes them (the trainer's only way to touch the folder); :class:`Run` answers what the
pages and the CLI ask (metrics, checkpoints, the model, its preprocessing, its dataset, where caches go).
Every write is atomic, so a reader (the page, a second tab) never sees half a file. Runs are deleted and
stopped by name (:func:`delete_run`, :func:`stop_run`); the runs folder has a quota (:mod:`cnndash.runs.quota`).
"""

from cnndash.runs.batchlog import BATCH_COLUMNS, BatchSeries, read_batch_log, read_batch_series
from cnndash.runs.checkpoint import CHECKPOINTS, Checkpoint, TrainState
from cnndash.runs.files import (
    RunError,
    metric_rows,
    read_json,
    read_process_log,
    read_status,
    read_summary,
    save_atomic,
    write_json_atomic,
    write_status,
)
from cnndash.runs.layout import BATCH_LOG, RunNameError, check_run_name, has_checkpoint, holds_run
from cnndash.runs.manage import delete_run, stop_run, sweep_runs
from cnndash.runs.quota import RunsQuotaError
from cnndash.runs.store import Run, list_runs, load_run, new_run_name, read_run
from cnndash.runs.writer import EXTRA_METRIC_COLUMNS, METRIC_COLUMNS, RunWriter

__all__ = [
    "BATCH_COLUMNS",
    "BATCH_LOG",
    "CHECKPOINTS",
    "EXTRA_METRIC_COLUMNS",
    "METRIC_COLUMNS",
    "BatchSeries",
    "Checkpoint",
    "Run",
    "RunError",
    "RunNameError",
    "RunWriter",
    "RunsQuotaError",
    "TrainState",
    "check_run_name",
    "delete_run",
    "has_checkpoint",
    "holds_run",
    "list_runs",
    "load_run",
    "metric_rows",
    "new_run_name",
    "read_batch_log",
    "read_batch_series",
    "read_json",
    "read_process_log",
    "read_run",
    "read_status",
    "read_summary",
    "save_atomic",
    "stop_run",
    "sweep_runs",
    "write_json_atomic",
    "write_status",
]
