"""What a CNN computes inside: feature maps of any layer, the first layer's filters, and how faithful its
class activation maps are.

The faithfulness check uses the built-in ``shapes`` dataset, whose images come with object masks:

- **pointing game** -- the share of images whose CAM maximum falls inside the object (a hit); a map that
  is flat has no maximum and counts as a miss;
- **energy in mask** -- the share of the CAM's total mass that lies inside the object.

Both are compared with chance: a point picked uniformly at random lands inside the object with
probability equal to the object's area share, and a uniform map puts exactly that share in the mask.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnndash.errors import UserError
from cnndash.explain.cam import compute_cam_result
from cnndash.explain.target_layers import model_device, resolve_layer
from cnndash.models import default_cam_layer
from cnndash.modes import eval_mode

if TYPE_CHECKING:
    from cnndash.runs import Run


# A filter whose weights are all equal is shown as black instead of dividing by zero.
_MIN_FILTER_RANGE = 1e-12
# A resized mask pixel belongs to the object when at least half of it did (bilinear coverage).
_MASK_THRESHOLD = 0.5
# Images per CAM call in the faithfulness check: bounds memory on large validation sets.
FAITHFULNESS_BATCH = 32
# Validation images scored by default: the pointing accuracy's standard error is then at most 3.5 points.
FAITHFULNESS_MAX_IMAGES = 200


class FeatureError(UserError):
    """A feature or faithfulness request that cannot be served; the message says what to change."""


def _as_batch(input_tensor: torch.Tensor) -> torch.Tensor:
    if input_tensor.ndim == 3:
        input_tensor = input_tensor.unsqueeze(0)
    if input_tensor.ndim != 4 or input_tensor.shape[0] != 1:
        raise FeatureError(
            "Feature maps are shown for one image, of shape (C, H, W) or (1, C, H, W); got "
            "{input_tensor_shape}.",
            input_tensor_shape=tuple(input_tensor.shape),
        )
    return input_tensor


def feature_maps(model: nn.Module, layer: nn.Module | str, input_tensor: torch.Tensor) -> np.ndarray:
    """The output of ``layer`` for one image: ``(C, h, w)`` float32.

    Runs the model once without gradients in eval mode; the hook is removed and the mode restored after.
    """
    name, module = resolve_layer(model, layer)
    x = _as_batch(input_tensor).to(model_device(model), torch.float32)
    captured: list[torch.Tensor] = []
    thread = threading.get_ident()

    def hook(mod, inputs, output):
        # ignore passes of other threads through the same (shared, cached) model
        if isinstance(output, torch.Tensor) and threading.get_ident() == thread:
            # clone: an in-place activation after this layer must not change what we show
            captured.append(output.detach().clone())

    handle = module.register_forward_hook(hook)
    try:
        with eval_mode(model), torch.no_grad():
            model(x)
    finally:
        handle.remove()
    if not captured:
        raise FeatureError(
            "Layer {name} did not run for this input; pick a layer the model uses.", name=repr(name)
        )
    out = captured[0]
    if out.ndim != 4:
        raise FeatureError(
            "Layer {name} outputs shape {out_shape}, not feature maps (N, C, H, W); pick a convolutional "
            "layer or block.",
            name=repr(name),
            out_shape=tuple(out.shape),
        )
    return out[0].float().cpu().numpy()


def strongest_channels(maps: np.ndarray, k: int) -> list[int]:
    """Indices of the ``k`` channels with the largest mean activation, strongest first."""
    if maps.ndim != 3:
        raise FeatureError(
            "Expected feature maps of shape (C, h, w), got {maps_shape}.", maps_shape=maps.shape
        )
    order = np.argsort(-maps.reshape(maps.shape[0], -1).mean(axis=1), kind="stable")
    return [int(i) for i in order[: max(k, 0)]]


def first_conv(model: nn.Module) -> tuple[str, nn.Conv2d]:
    """``(dotted name, module)`` of the model's first ``Conv2d`` in registration order."""
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            return name, module
    raise FeatureError(
        "This {kind} has no Conv2d layer, so it has no filters to show.", kind=type(model).__name__
    )


def filter_images(model: nn.Module) -> np.ndarray:
    """The first conv layer's filters as images: ``(out_channels, kh, kw, 3)`` for RGB input, else
    ``(out_channels, kh, kw, 1)``; each filter min-max scaled to ``[0, 1]`` on its own.

    With 3 input channels a filter is shown as colours (R, G, B = its weights on each input channel);
    with any other number, as the mean over input channels in grey.
    """
    _, conv = first_conv(model)
    w = conv.weight.detach().float().cpu()
    w = w.permute(0, 2, 3, 1) if w.shape[1] == 3 else w.mean(dim=1, keepdim=True).permute(0, 2, 3, 1)
    lo = w.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = w.flatten(1).amax(1).view(-1, 1, 1, 1)
    return ((w - lo) / (hi - lo).clamp_min(_MIN_FILTER_RANGE)).numpy().astype(np.float32)


# -- faithfulness -------------------------------------------------------------------------------------------


@dataclass
class FaithfulnessResult:
    """Pointing game and energy-in-mask over a set of images with object masks."""

    pointing_accuracy: float  # share of images whose CAM maximum is inside the mask
    energy_share: float  # mean share of the CAM's mass inside the mask
    chance: float  # mean mask area share: what a random point / a uniform map would score
    n_images: int
    hits: np.ndarray  # (N,) bool
    energy: np.ndarray  # (N,) float
    flat: np.ndarray  # (N,) bool: maps with no information (counted as misses)
    method: str = ""
    layer: str = ""

    @property
    def lift(self) -> float:
        """Pointing accuracy divided by chance (1 = no better than random)."""
        return self.pointing_accuracy / self.chance if self.chance > 0 else float("nan")


def resize_masks(masks: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Resize ``(N, h, w)`` bool masks the way images are resized (antialiased bilinear), threshold 0.5."""
    size = (size, size) if isinstance(size, int) else tuple(size)
    m = torch.from_numpy(np.asarray(masks, dtype=np.float32))[:, None]
    if tuple(m.shape[-2:]) == size:
        return np.asarray(masks, dtype=bool)
    out = F.interpolate(m, size=size, mode="bilinear", align_corners=False, antialias=True)
    return (out[:, 0] > _MASK_THRESHOLD).numpy()


def pointing_game(
    maps: np.ndarray, masks: np.ndarray, flat: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per image: ``(hit, energy share inside the mask)`` for CAMs ``(N, H, W)`` and masks of the same shape.

    A flat map (per ``flat``, or all zero) is a miss and is given the energy share of a uniform map.
    """
    maps = np.asarray(maps, dtype=np.float64)
    masks = np.asarray(masks, dtype=bool)
    if maps.shape != masks.shape:
        raise FeatureError(
            "CAMs {maps_shape} and masks {masks_shape} must have the same shape.",
            maps_shape=maps.shape,
            masks_shape=masks.shape,
        )
    n = maps.shape[0]
    flat = np.zeros(n, dtype=bool) if flat is None else np.asarray(flat, dtype=bool).copy()
    totals = maps.reshape(n, -1).sum(axis=1)
    flat |= totals <= 0
    peak = maps.reshape(n, -1).argmax(axis=1)
    hits = masks.reshape(n, -1)[np.arange(n), peak] & ~flat
    inside = (maps * masks).reshape(n, -1).sum(axis=1)
    area = masks.reshape(n, -1).mean(axis=1)
    energy = np.where(flat, area, inside / np.where(totals > 0, totals, 1.0))
    return hits, energy


def evaluate_faithfulness(
    model: nn.Module,
    images: torch.Tensor,
    masks: np.ndarray,
    targets: Sequence[int],
    layer: nn.Module | str,
    method: str = "gradcam",
    batch_size: int = FAITHFULNESS_BATCH,
) -> FaithfulnessResult:
    """Pointing game and energy share for preprocessed ``images`` ``(N, C, H, W)`` with ``masks``
    ``(N, H, W)`` at the same size; the CAM explains ``targets`` (usually the true classes)."""
    if len(images) == 0:
        raise FeatureError("No images to score; the pointing game needs at least one image with a mask.")
    if masks.shape != (images.shape[0], *images.shape[-2:]):
        raise FeatureError(
            "Masks of shape {masks_shape} do not match images {images_shape}; resize them with "
            "resize_masks(masks, image_size).",
            masks_shape=masks.shape,
            images_shape=tuple(images.shape),
        )
    maps, flats = [], []
    layer_name = ""
    for start in range(0, len(images), batch_size):
        stop = start + batch_size
        result = compute_cam_result(model, layer, images[start:stop], list(targets[start:stop]), method)
        maps.append(result.maps)
        flats.append(result.flat)
        layer_name = result.layer
    all_maps, all_flat = np.concatenate(maps), np.concatenate(flats)
    hits, energy = pointing_game(all_maps, masks, all_flat)
    return FaithfulnessResult(
        pointing_accuracy=float(hits.mean()),
        energy_share=float(energy.mean()),
        chance=float(np.asarray(masks, dtype=bool).reshape(len(masks), -1).mean()),
        n_images=len(hits),
        hits=hits,
        energy=energy,
        flat=all_flat,
        method=method,
        layer=layer_name,
    )


def run_faithfulness(
    run: Run,
    *,
    method: str = "gradcam",
    layer: str | None = None,
    max_images: int = FAITHFULNESS_MAX_IMAGES,
    checkpoint: str = "best",
) -> FaithfulnessResult:
    """Pointing game of a trained run on (up to ``max_images`` of) its validation images.

    The run must be trained on ``shapes`` (the only built-in dataset with object masks); ``layer``
    defaults to the model's usual CAM layer. Each map explains the image's true class.
    """
    dataset = run.dataset()
    val = dataset.val
    if val.masks is None:
        raise FeatureError(
            "Run {run_name} was trained on {dataset}, which has no object masks; the pointing game needs a run "
            "trained on the 'shapes' dataset.",
            run_name=repr(run.name),
            dataset=repr(run.config.get("dataset")),
        )
    n = min(len(val), max(int(max_images), 1))
    model = run.load_model(checkpoint)
    images = [val[i][0] for i in range(n)]
    x = run.preprocess(images)
    masks = resize_masks(val.masks[:n], tuple(x.shape[-2:]))
    layer = layer or default_cam_layer(run.config["model"])
    return evaluate_faithfulness(model, x, masks, val.targets[:n], layer, method)
