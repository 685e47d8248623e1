"""Run folders on disk: the only code that knows their layout.

A run is one folder under the runs directory (``cnndash.paths.runs_dir()``, default ``./runs``):

- ``config.json``   — the resolved :class:`cnndash.training.loops.TrainConfig` (everything needed to rerun);
- ``dataset.json``  — classes, channels, image size and the normalisation the model was trained with;
- ``metrics.csv``   — one row per finished epoch: ``epoch,train_loss,train_acc,val_loss,val_acc`` (+ extras);
- ``batches.csv``   — one row per reported training batch (step, loss, accuracy, LR, wall seconds), the
  whole run's, resumed parts included;
- ``last.pt`` / ``best.pt`` — a :class:`Checkpoint` stored as a dict of plain types
  (``torch.load(weights_only=True)`` reads it);
- ``summary.json``  — ``val_accuracy``, ``epochs``, ``device``, ``images_per_sec``, ``seconds``, ``best_epoch``…;
- ``status.json``   — ``running`` | ``finished`` | ``stopped`` | ``failed`` with a message and the owner
  (pid + process start time); a ``running`` run whose owner is gone reads as ``interrupted``, a folder that
  cannot be read as a run is listed as ``broken``.

:class:`RunWriter` writes them (the trainer's only way to touch the folder); :class:`Run` answers what the
pages and the CLI ask (metrics, checkpoints, the model, its preprocessing, its dataset). Every write is
atomic, so a reader (the page, a second tab) never sees half a file.
"""

from cnndash.runs.checkpoint import CHECKPOINTS, Checkpoint, TrainState
from cnndash.runs.files import RunError, read_json, save_atomic, write_json_atomic, write_status
from cnndash.runs.store import Run, delete_run, list_runs, load_run, new_run_name, read_batch_log
from cnndash.runs.writer import BATCH_COLUMNS, BATCH_LOG, EXTRA_METRIC_COLUMNS, METRIC_COLUMNS, RunWriter

__all__ = [
    "BATCH_COLUMNS",
    "BATCH_LOG",
    "CHECKPOINTS",
    "EXTRA_METRIC_COLUMNS",
    "METRIC_COLUMNS",
    "Checkpoint",
    "Run",
    "RunError",
    "RunWriter",
    "TrainState",
    "delete_run",
    "list_runs",
    "load_run",
    "new_run_name",
    "read_batch_log",
    "read_json",
    "save_atomic",
    "write_json_atomic",
    "write_status",
]
