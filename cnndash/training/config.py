"""``TrainConfig``: every setting of a training run, saved as ``config.json`` with the run and inside every
checkpoint, so a run can be repeated or resumed exactly. :mod:`cnndash.training.loops` re-exports it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields

from cnndash.models import MODEL_NAMES, TRANSFER_MODES
from cnndash.training.optim import OPTIMIZERS, SCHEDULES

MIN_IMAGE_SIZE = 4  # below this no built-in model has a single pixel left after its first stage
# The largest square side accepted: a batch of 32 RGB images at 1024 px is 400 MB as float32 before any
# activation, and ResNet-18's activations at that size need several GB more. Larger asks are refused
# before anything is allocated.
MAX_IMAGE_SIZE = 1024
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
# The largest learning rate accepted. Every optimiser here diverges far below it on normalised inputs (Adam
# wants ~1e-3, SGD ~0.1); a larger value is a typo (100 for 0.01), refused instead of trained.
MAX_LR = 10.0
# What a run is for: "train" (a run a person started), "fold" (one fold of a label check) or "trial" (one
# configuration of a search). Fold and trial runs belong to their ``group`` and are kept out of pickers.
PURPOSES = ("train", "fold", "trial")


class ConfigError(ValueError):
    """A training setting that cannot work; the message names the setting and a valid value.

    ``field`` is the :class:`TrainConfig` field at fault (None when no one field is), so a form can show
    the message next to that field's widget.
    """

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass
class TrainConfig:
    dataset: str  # built-in name (digits, shapes, …), uploaded dataset name, or image folder / zip path
    model: str = "lenet"  # one of cnndash.models.MODEL_NAMES
    epochs: int = 10
    device: str = "auto"  # auto | cpu | cuda | mps
    seed: int = 0  # model init, shuffling and augmentation; same seed + same data = same run on CPU
    # The global batch: with N processes (torchrun) each takes its share (batch_size / N; when it does not
    # divide, the first batch_size % N processes take one image more), so a run's updates are the same
    # whatever N. Small batches = more updates per epoch, which matters most on small datasets.
    batch_size: int = 32
    lr: float = 3e-3  # peak learning rate (one-cycle) / base learning rate (other schedules)
    optimizer: str = "adam"  # adam | adamw | sgd (momentum 0.9, Nesterov)
    momentum: float = 0.9  # SGD only
    weight_decay: float = 0.0
    label_smoothing: float = 0.1  # as in torchvision's recipes; the training loss then stays above 0
    schedule: str = "onecycle"  # onecycle | cosine | step | constant
    warmup_epochs: float = 0.0  # linear warm-up (cosine/step/constant); one-cycle warms up on its own
    step_size: int = 0  # step schedule: epochs between LR drops (0 = a third of the epochs)
    step_gamma: float = 0.1  # step schedule: LR factor at each drop
    grad_clip: float = 0.0  # max gradient norm, 0 = off
    early_stopping: int = 0  # stop after this many epochs without a better validation result, 0 = off
    image_size: int | None = None  # square side the model sees; None = from the dataset and model
    val_fraction: float = 0.2
    augment: list[dict] = field(default_factory=list)  # augmentation spec (cnndash.augment), [] = none
    pipeline: str = ""  # name of the saved pipeline the spec came from (display only)
    pretrained: bool = False  # ImageNet weights from the local torch cache (resnet18, mobilenet_v2)
    transfer: str = "all"  # all | freeze (train the head only) | lower_lr (backbone at lr * factor)
    backbone_lr_factor: float = 0.1
    amp: bool = True  # mixed precision on CUDA (ignored elsewhere)
    channels_last: bool = True  # NHWC memory layout on CUDA and CPU (ignored on MPS)
    memory_budget_mb: int = 2048  # decoded-dataset size above which the DataLoader path is used
    num_workers: int = 0  # DataLoader workers (DataLoader path only)
    threads: int = 0  # torch CPU threads while training, 0 = leave torch's setting
    tensorboard: bool = True  # also write TensorBoard event files into the run folder
    sync_batchnorm: bool = False  # distributed: BatchNorm statistics over the global batch (SyncBatchNorm)
    # Distributed: lr × number of processes, the linear scaling rule (Goyal et al. 2017) for when batch_size
    # was also multiplied by it (each process keeps the batch the lr was tuned for). Off: the lr is never
    # rescaled behind your back; a large scaled lr usually wants warm-up too.
    scale_lr: bool = False
    purpose: str = "train"  # one of PURPOSES
    group: str = ""  # the label check or search a fold or trial run belongs to ("" for purpose "train")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["augment"] = [dict(step) for step in self.augment]
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(
                f"Unknown training setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}."
            )
        if "dataset" not in data:
            raise ConfigError("A training config needs a 'dataset'.")
        return cls(**data)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot train; its ``field`` names the setting."""
        for name, ok, message in self._checks():
            if not ok:
                raise ConfigError(message[0].upper() + message[1:] + ".", field=name)

    def _checks(self) -> list[tuple[str, bool, str]]:  # long: one line per setting, read as a table
        """(field, holds, message when it does not) for every setting :meth:`validate` checks."""
        return [
            (
                "model",
                self.model in MODEL_NAMES,
                f"model must be one of {', '.join(MODEL_NAMES)}, got {self.model!r}",
            ),
            (
                "epochs",
                _whole(self.epochs) and 1 <= self.epochs <= MAX_EPOCHS,
                f"epochs must be a whole number from 1 to {MAX_EPOCHS}, got {self.epochs}",
            ),
            (
                "batch_size",
                _whole(self.batch_size) and 1 <= self.batch_size <= MAX_BATCH_SIZE,
                f"batch size must be a whole number from 1 to {MAX_BATCH_SIZE}, got {self.batch_size}",
            ),
            (
                "seed",
                _whole(self.seed) and 0 <= self.seed < 2**63,
                f"seed must be a whole number of at least 0 (e.g. 0, 1, 42), got {self.seed}",
            ),
            (
                "lr",
                isinstance(self.lr, int | float) and math.isfinite(self.lr) and 0 < self.lr <= MAX_LR,
                f"learning rate must be a positive number of at most {MAX_LR:g}, got {self.lr:g}"
                if isinstance(self.lr, int | float)
                else f"learning rate must be a positive number of at most {MAX_LR:g}, got {self.lr!r}",
            ),
            (
                "optimizer",
                self.optimizer in OPTIMIZERS,
                f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {self.optimizer!r}",
            ),
            (
                "schedule",
                self.schedule in SCHEDULES,
                f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}",
            ),
            (
                "transfer",
                self.transfer in TRANSFER_MODES,
                f"transfer must be one of {', '.join(TRANSFER_MODES)}, got {self.transfer!r}",
            ),
            (
                "val_fraction",
                0 < self.val_fraction < 1,
                f"val_fraction must be between 0 and 1, got {self.val_fraction}",
            ),
            (
                "label_smoothing",
                0 <= self.label_smoothing < 1,
                f"label smoothing must be at least 0 and below 1, got {self.label_smoothing:g}",
            ),
            (
                "weight_decay",
                self.weight_decay >= 0,
                f"weight decay must be 0 or more, got {self.weight_decay:g}",
            ),
            (
                "grad_clip",
                self.grad_clip >= 0,
                f"gradient clipping must be 0 (off) or more, got {self.grad_clip:g}",
            ),
            (
                "early_stopping",
                self.early_stopping >= 0,
                f"early stopping patience must be 0 (off) or more epochs, got {self.early_stopping}",
            ),
            (
                "warmup_epochs",
                0 <= self.warmup_epochs < self.epochs or self.warmup_epochs == 0,
                f"warm-up must be 0 or more and shorter than the run ({self.epochs} epochs), got "
                f"{self.warmup_epochs:g}",
            ),
            (
                "image_size",
                self.image_size is None or (_whole(self.image_size) and self.image_size >= MIN_IMAGE_SIZE),
                f"image size too small: {self.image_size} (at least {MIN_IMAGE_SIZE} px, or automatic)",
            ),
            (
                "image_size",
                self.image_size is None or self.image_size <= MAX_IMAGE_SIZE,
                f"image size {self.image_size} px is too large: at most {MAX_IMAGE_SIZE} px (the memory a "
                "batch would need grows with its square)",
            ),
            ("augment", isinstance(self.augment, list), "augment must be a list of steps (a pipeline spec)"),
            (
                "purpose",
                self.purpose in PURPOSES,
                f"purpose must be one of {', '.join(PURPOSES)}, got {self.purpose!r}",
            ),
            ("group", isinstance(self.group, str), f"group must be text, got {self.group!r}"),
        ]


def spec_normalize(spec: list[dict]) -> dict | None:
    """The pipeline's own ``Normalize`` step, if it has one (its statistics then replace the dataset's)."""
    return next((step for step in spec if step.get("op") == "Normalize"), None)


def scaled_lr(config: TrainConfig, processes: int) -> float:
    """The learning rate a run of ``processes`` processes steps with: ``config.lr``, times ``processes`` when
    ``config.scale_lr`` asks for the linear scaling rule."""
    return config.lr * processes if config.scale_lr else config.lr


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
