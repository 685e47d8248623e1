"""``TrainConfig``: every setting of a training run, saved as ``config.json`` with the run and inside every
checkpoint, so a run can be repeated or resumed exactly. :mod:`cnndash.training.loops` re-exports it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cnndash.errors import Phrase, Term, UserError
from cnndash.text import N_
from cnndash.training.choices import MODEL_NAMES, OPTIMIZERS, SCHEDULES, TRANSFER_MODES

MIN_IMAGE_SIZE = 4  # below this no built-in model has a single pixel left after its first stage
# The largest square side accepted: a batch of 32 RGB images at 1024 px is 400 MB as float32 before any
# activation, and ResNet-18's activations at that size need several GB more. Larger asks are refused
# before anything is allocated.
MAX_IMAGE_SIZE = 1024
MAX_EPOCHS = 10_000
MAX_BATCH_SIZE = 65_536
MAX_MEMORY_BUDGET_MB = 1 << 20  # 1 TiB of decoded data: beyond any machine this runs on
MAX_WORKERS = 64  # DataLoader worker processes
MAX_THREADS = 1024  # torch CPU threads
# The largest learning rate accepted. Every optimiser here diverges far below it on normalised inputs (Adam
# wants ~1e-3, SGD ~0.1); a larger value is a typo (100 for 0.01), refused instead of trained.
MAX_LR = 10.0
# What a run is for: "train" (a run a person started), "fold" (one fold of a label check) or "trial" (one
# configuration of a search). Fold and trial runs belong to their ``group`` and are kept out of pickers.
PURPOSES = (N_("train"), N_("fold"), N_("trial"))


class ConfigError(UserError):
    """A training setting that cannot work; the message names the setting and a valid value.

    ``field`` is the :class:`TrainConfig` field at fault (None when no one field is), so a form can show
    the message next to that field's widget; ``form_message`` says the same in the form's words (the
    field's label, the value as typed: "Learning rate must be …, got 100."), the message itself.
    """

    def __init__(
        self,
        message: str,
        /,
        field: str | None = None,
        form_message: Phrase | None = None,
        **params: object,
    ) -> None:
        super().__init__(message, **params)
        self.field = field
        # A Phrase, so that the form shows it in the person's language (ui.phrase_text).
        self.form_message = form_message if form_message is not None else Phrase(message, **params)


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
        """A config from a dict of settings (a run's ``config.json``); :class:`ConfigError` for anything else
        than a dict of known settings with a ``dataset``. The values are checked by :meth:`validate`."""
        if not isinstance(data, dict):
            raise ConfigError(
                "A training config is an object of settings, got {kind}.", kind=type(data).__name__
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(str(key) for key in set(data) - known)
        if unknown:
            names = ", ".join(_shown(key) for key in unknown[:8]) + (", …" if len(unknown) > 8 else "")
            raise ConfigError(
                "Unknown training setting(s) {names}; known: {known}.",
                names=names,
                known=", ".join(sorted(known)),
            )
        if "dataset" not in data:
            raise ConfigError("A training config needs a 'dataset'.")
        return cls(**data)

    def validate(self) -> None:
        """Raise :class:`ConfigError` for any setting of the wrong type or out of range, naming the setting
        and a valid value (every field is checked: a config may come from a hand-edited JSON file)."""
        for name, ok, expected in SETTING_CHECKS:
            value = getattr(self, name)
            try:
                passed = ok(value)
            except (TypeError, ValueError, OverflowError):
                passed = False
            if not passed:
                label = f" ({_LABELS[name]})" if name in _LABELS else ""
                in_form = _IN_FORM.get(name, name.replace("_", " ").capitalize())
                raise ConfigError(
                    "Setting {name}{label} must be {expected}, got {shown}.",
                    field=name,
                    form_message=Phrase(
                        N_("{setting} must be {expected}, got {value}."),
                        setting=Term(in_form),
                        expected=expected,
                        value=_typed(value),
                    ),
                    name=repr(name),
                    label=label,
                    expected=expected,
                    shown=_shown(value),
                )
        if self.warmup_epochs and self.warmup_epochs >= self.epochs:
            raise ConfigError(
                "Setting 'warmup_epochs' ({warmup_epochs:g}) must be shorter than the run's {epochs} epochs "
                "(e.g. 0 or {max}).",
                field="warmup_epochs",
                warmup_epochs=self.warmup_epochs,
                epochs=self.epochs,
                max=max(self.epochs - 1, 0),
            )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: object, most: int = 4096) -> bool:
    return isinstance(value, str) and len(value) <= most and "\x00" not in value


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "…"


def _typed(value: object) -> str:
    """A value as a person typed it into a form: 100, not 100.0."""
    if isinstance(value, float) and math.isfinite(value):
        return f"{value:g}"
    return _shown(value)


# What the form calls a setting whose field name says less.
_LABELS = {"lr": "learning rate", "batch_size": "batch size", "val_fraction": "validation share",
           "image_size": "image size", "warmup_epochs": "warm-up", "grad_clip": "gradient clipping",
           "early_stopping": "early stopping patience", "step_gamma": "step schedule's LR factor",
           "weight_decay": "weight decay", "label_smoothing": "label smoothing", "num_workers": "data workers",
           "memory_budget_mb": "memory budget", "backbone_lr_factor": "backbone LR factor"}  # fmt: skip
# The same, as the form's sentence begins with it (marked: shown translated, cnndash.errors.Term).
_IN_FORM = {"lr": N_("Learning rate"), "batch_size": N_("Batch size"), "val_fraction": N_("Validation share"),
            "image_size": N_("Image size"), "warmup_epochs": N_("Warm-up"), "grad_clip": N_("Gradient clipping"),
            "early_stopping": N_("Early stopping patience"), "step_gamma": N_("Step schedule's LR factor"),
            "weight_decay": N_("Weight decay"), "label_smoothing": N_("Label smoothing"),
            "num_workers": N_("Data workers"), "memory_budget_mb": N_("Memory budget"),
            "backbone_lr_factor": N_("Backbone LR factor"), "epochs": N_("Epochs"), "momentum": N_("Momentum"),
            "seed": N_("Seed"), "step_size": N_("Step size")}  # fmt: skip
_DEVICE = re.compile(r"auto|cpu|mps|cuda(:\d{1,3})?")
_BOOL = (lambda v: isinstance(v, bool), "a boolean (true or false)")
# (setting, check, what a valid value is): every field of TrainConfig, in order.
SETTING_CHECKS: list[tuple[str, Callable[[Any], bool], str]] = [
    ("dataset", lambda v: _text(v) and bool(v.strip()), "a dataset name or path (e.g. 'digits')"),
    ("model", lambda v: v in MODEL_NAMES, f"one of {', '.join(MODEL_NAMES)}"),
    (
        "epochs",
        lambda v: _whole(v) and 1 <= v <= MAX_EPOCHS,
        f"a whole number from 1 to {MAX_EPOCHS} (e.g. 10)",
    ),
    (
        "device",
        lambda v: isinstance(v, str) and bool(_DEVICE.fullmatch(v.strip().lower())),
        "one of auto, cpu, cuda, cuda:N, mps",
    ),
    ("seed", lambda v: _whole(v) and 0 <= v < 2**63, "a whole number of at least 0 (e.g. 0, 1, 42)"),
    (
        "batch_size",
        lambda v: _whole(v) and 1 <= v <= MAX_BATCH_SIZE,
        f"a whole number from 1 to {MAX_BATCH_SIZE} (e.g. 32)",
    ),
    (
        "lr",
        lambda v: _number(v) and 0 < v <= MAX_LR,
        f"a positive number of at most {MAX_LR:g} (e.g. 0.003)",
    ),
    ("optimizer", lambda v: v in OPTIMIZERS, f"one of {', '.join(OPTIMIZERS)}"),
    ("momentum", lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1) (e.g. 0.9)"),
    ("weight_decay", lambda v: _number(v) and v >= 0, "a number of at least 0 (e.g. 0.0001)"),
    ("label_smoothing", lambda v: _number(v) and 0 <= v < 1, "a number in [0, 1) (e.g. 0.1)"),
    ("schedule", lambda v: v in SCHEDULES, f"one of {', '.join(SCHEDULES)}"),
    (
        "warmup_epochs",
        lambda v: _number(v) and 0 <= v <= MAX_EPOCHS,
        "a number of epochs of at least 0 (e.g. 1)",
    ),
    (
        "step_size",
        lambda v: _whole(v) and 0 <= v <= MAX_EPOCHS,
        "a whole number of epochs of at least 0 (0 = a third of the epochs)",
    ),
    ("step_gamma", lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1] (e.g. 0.1)"),
    ("grad_clip", lambda v: _number(v) and v >= 0, "a number of at least 0 (0 = off, e.g. 1.0)"),
    (
        "early_stopping",
        lambda v: _whole(v) and 0 <= v <= MAX_EPOCHS,
        "a whole number of epochs of at least 0 (0 = off, e.g. 5)",
    ),
    (
        "image_size",
        lambda v: v is None or (_whole(v) and MIN_IMAGE_SIZE <= v <= MAX_IMAGE_SIZE),
        f"empty (automatic) or a whole number of pixels from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE} (the memory a "
        "batch needs grows with its square)",
    ),
    ("val_fraction", lambda v: _number(v) and 0 < v < 1, "a number between 0 and 1 (e.g. 0.2)"),
    (
        "augment",
        lambda v: (
            isinstance(v, list) and all(isinstance(s, dict) and isinstance(s.get("op"), str) for s in v)
        ),
        'a list of pipeline steps such as {"op": "RandomHorizontalFlip"} ([] = none)',
    ),
    ("pipeline", lambda v: _text(v, 256), "text (the saved pipeline's name, or '')"),
    ("pretrained", *_BOOL),
    ("transfer", lambda v: v in TRANSFER_MODES, f"one of {', '.join(TRANSFER_MODES)}"),
    ("backbone_lr_factor", lambda v: _number(v) and 0 < v <= 1, "a number in (0, 1] (e.g. 0.1)"),
    ("amp", *_BOOL),
    ("channels_last", *_BOOL),
    (
        "memory_budget_mb",
        lambda v: _whole(v) and 0 <= v <= MAX_MEMORY_BUDGET_MB,
        f"a whole number of MiB from 0 to {MAX_MEMORY_BUDGET_MB} (e.g. 2048)",
    ),
    (
        "num_workers",
        lambda v: _whole(v) and 0 <= v <= MAX_WORKERS,
        f"a whole number from 0 to {MAX_WORKERS} (e.g. 0)",
    ),
    (
        "threads",
        lambda v: _whole(v) and 0 <= v <= MAX_THREADS,
        f"a whole number from 0 to {MAX_THREADS} (0 = torch's own setting)",
    ),
    ("tensorboard", *_BOOL),
    ("sync_batchnorm", *_BOOL),
    ("scale_lr", *_BOOL),
    ("purpose", lambda v: v in PURPOSES, f"one of {', '.join(PURPOSES)}"),
    ("group", lambda v: _text(v, 256), "text (the label check or search it belongs to, or '')"),
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
