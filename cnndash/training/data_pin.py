"""What a run trains on: the dataset pinned when the run starts, and loaded and decoded from that pin.

A run's data stays fixed for that run: :func:`pin_run_data` records, in the run folder, the exact content
``config.dataset`` names at the start (or the one a resumed run recorded, or a label check's fold view),
and :func:`load_training_data` loads that content — never whatever the name means later — split and
decoded at the run's image size. Distributed: rank 0 decides the pin and every rank gets it.
"""

from __future__ import annotations

from pathlib import Path

import torch

from cnndash.data import DatasetError, ImageSet, load_dataset
from cnndash.data.pins import DatasetRef, load_ref, pin_dataset, pin_ref, run_holder
from cnndash.models import auto_image_size
from cnndash.runs.files import read_json
from cnndash.runs.layout import DATASET_FILE
from cnndash.training.batches import TrainingData, prepare_data
from cnndash.training.config import ConfigError, TrainConfig
from cnndash.training.distributed import Distributed


def pin_run_data(
    config: TrainConfig, run_dir: Path, resume: bool, dataset_ref: dict | None, dist: Distributed | None
) -> dict | None:
    """What the run trains on, fixed now (rank 0 decides, every rank gets it): the ref a resumed run
    recorded (None for a run from before refs: it loads by name), ``dataset_ref`` (a label check's fold
    view), or what ``config.dataset`` means at this moment. The run folder holds the pin."""

    def decide() -> dict | None:
        holder = run_holder(run_dir)
        if resume:
            saved = read_json(run_dir / DATASET_FILE)
            recorded = saved.get("dataset_ref") if isinstance(saved, dict) else None
            return pin_ref(DatasetRef.from_dict(recorded), holder).to_dict() if recorded else None
        if dataset_ref is not None:
            return pin_ref(DatasetRef.from_dict(dataset_ref), holder).to_dict()
        return pin_dataset(config.dataset, holder).to_dict()

    return decide() if dist is None else dist.from_rank0(decide)


def load_pinned(config: TrainConfig, ref: dict | None, dist: Distributed | None) -> ImageSet:
    """The pinned content split as configured (a run from before pins: the dataset by name)."""
    if ref is None:
        return load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
    try:
        return load_ref(DatasetRef.from_dict(ref), val_fraction=config.val_fraction, seed=config.seed)
    except DatasetError:
        if dist is None or dist.is_main:
            raise
        # Another machine of a multi-node run has its own data folder, without rank 0's contents: it
        # loads the dataset by name (docs/distributed.md: every node needs the dataset, at the same path).
        return load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)


def load_training_data(
    config: TrainConfig, device: torch.device, ref: dict | None, dist: Distributed | None
) -> tuple[ImageSet, TrainingData]:
    """The dataset split as configured and decoded at the run's image size (set on ``config``)."""
    imageset = load_pinned(config, ref, dist)
    if len(imageset.train) == 0 or len(imageset.val) == 0:
        raise ConfigError(
            "Dataset {config_dataset} has {n_imageset_train} training and {n_imageset_val} validation "
            "images; both need at least one (use more images or another val_fraction).",
            config_dataset=repr(config.dataset),
            n_imageset_train=len(imageset.train),
            n_imageset_val=len(imageset.val),
        )
    config.image_size = int(
        config.image_size or auto_image_size(config.model, imageset.image_size, config.augment)[0]
    )
    data = prepare_data(
        imageset,
        size=config.image_size,
        spec=config.augment,
        device=device,
        memory_budget_mb=config.memory_budget_mb,
        num_workers=config.num_workers,
    )
    return imageset, data
