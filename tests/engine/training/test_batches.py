"""The trainer's data path: batched augmentation, epoch order, and both data paths giving the same batches."""

from __future__ import annotations

import torch

from cnndash.data import compute_mean_std, load_dataset
from cnndash.preprocess import channel_stats
from cnndash.training.batches import (
    BatchAugmenter,
    LoaderData,
    MemoryData,
    batch_indices,
    decode_split,
    prepare_data,
)


def test_leading_flips_run_batched_and_the_rest_per_sample():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.uint8).view(2, 3, 4, 4)
    both = BatchAugmenter(
        [{"op": "RandomHorizontalFlip", "p": 1.0}, {"op": "RandomVerticalFlip", "p": 1.0}], size=4
    )
    assert both.transform is None and torch.equal(both(x), x.flip(-1).flip(-2))
    assert torch.equal(BatchAugmenter([{"op": "RandomHorizontalFlip", "p": 0.0}], size=4)(x), x)

    torch.manual_seed(0)
    many = torch.zeros(400, 1, 2, 2, dtype=torch.uint8)
    many[:, :, :, 0] = 255
    flipped = BatchAugmenter([{"op": "RandomHorizontalFlip", "p": 0.5}], size=2)(many)
    n_flipped = int((flipped[:, 0, 0, 1] == 255).sum())
    assert 150 < n_flipped < 250  # each sample on its own coin, not the whole batch at once

    # A flip after another step stays per sample, in the spec's order; outputs come back at the model size.
    mixed = BatchAugmenter(
        [{"op": "RandomResizedCrop", "size": [3, 3]}, {"op": "RandomHorizontalFlip", "p": 1.0}], size=4
    )
    assert mixed.flips == [] and mixed(x).shape == (2, 3, 4, 4)


def test_epoch_order_is_seeded_and_never_ends_on_a_batch_of_one():
    a = batch_indices(33, 8, shuffle=True, seed=5)
    b = batch_indices(33, 8, shuffle=True, seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert sorted(torch.cat(a).tolist()) == list(range(33))
    assert [len(x) for x in a] == [8, 8, 8, 9]  # the lone 33rd image joins the last batch (BatchNorm)
    assert [len(x) for x in batch_indices(33, 8, shuffle=False, seed=0)] == [8, 8, 8, 8, 1]


def test_memory_and_dataloader_paths_give_the_same_batches_and_statistics():
    imageset = load_dataset("shapes:count=60,size=24", val_fraction=0.25, seed=0)
    cpu = torch.device("cpu")
    memory = prepare_data(imageset, size=20, spec=[], device=cpu, memory_budget_mb=1024, num_workers=0)
    loader = prepare_data(imageset, size=20, spec=[], device=cpu, memory_budget_mb=0, num_workers=0)
    assert isinstance(memory.train, MemoryData) and isinstance(loader.train, LoaderData)
    for (xm, ym), (xl, yl) in zip(
        memory.train.batches(16, shuffle=True, seed=3),
        loader.train.batches(16, shuffle=True, seed=3),
        strict=True,
    ):
        assert torch.equal(xm, xl) and torch.equal(ym, yl)
    assert (memory.mean, memory.std) == (loader.mean, loader.std)
    # The statistics are those of the whole (small) training split at the training size.
    assert (memory.mean, memory.std) == channel_stats(decode_split(imageset.train, 3, 20))
    assert (memory.mean, memory.std) == compute_mean_std(
        imageset.train, channels=3, size=20
    )  # the Data page's
