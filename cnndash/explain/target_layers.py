"""Which layer a class activation map is computed at: find it, list the candidates, suggest one, explain it.

Everything here is about choosing the target layer, before any map is computed; :mod:`cnndash.explain.cam` (the
CAM methods) builds on it and re-exports these names. :class:`CamError` lives here because choosing a
layer is the first thing a CAM request can get wrong; it is the error of the whole CAM feature.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from cnndash.errors import UserError
from cnndash.modes import eval_mode
from cnndash.text import N_, Phrase

# suggest_layer skips layers whose map has fewer cells than this (2x2): a 1x1 map cannot say "where".
MIN_SUGGESTED_CELLS = 4
# layer_advice: a layer is "late" from this share of the model's convolutions on, "middle" from the next.
LATE_DEPTH = 0.66
MIDDLE_DEPTH = 0.33

# Activations after a convolution are classic CAM targets too (VGG's last ReLU in the Grad-CAM paper).
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Mish)


class CamError(UserError):
    """A CAM request that cannot be served: unknown method or layer, wrong input shape, bad class."""


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter (CPU for a model without parameters)."""
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def resolve_layer(model: nn.Module, target_layer: nn.Module | str) -> tuple[str, nn.Module]:
    """Return ``(dotted_name, module)`` for a module of ``model`` given as a module or dotted name."""
    if isinstance(target_layer, str):
        modules = dict(model.named_modules())
        if target_layer not in modules or target_layer == "":
            convs = [n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
            hint = f" Conv layers of this model: {', '.join(convs[-5:])}." if convs else ""
            raise CamError(
                "Layer {target_layer} is not a module of this {kind}; use a dotted name from "
                "model.named_modules().{hint}",
                target_layer=repr(target_layer),
                kind=type(model).__name__,
                hint=hint,
            )
        return target_layer, modules[target_layer]
    for name, module in model.named_modules():
        if module is target_layer:
            if name == "":
                raise CamError("The target layer is the whole model; pick one of its convolutional layers.")
            return name, module
    raise CamError(
        "The given {kind} is not part of this {model}; pass a module of the model (or its dotted name).",
        kind=type(target_layer).__name__,
        model=type(model).__name__,
    )


@dataclass(frozen=True)
class LayerInfo:
    """A layer a CAM can be computed at, with what it outputs for a given input size."""

    name: str  # dotted module name
    kind: str  # class name, e.g. "Conv2d", "BasicBlock"
    output_shape: tuple[int, ...]  # (C, h, w), batch dimension dropped
    depth: float  # share of the model's convolutions done at this output: 0 = first conv, 1 = last

    @property
    def cells(self) -> int:
        return self.output_shape[1] * self.output_shape[2]


def _has_conv(module: nn.Module) -> bool:
    return any(isinstance(m, nn.Conv2d) for m in module.modules())


class _CandidateRecorder:
    """Forward hooks that record, per module, its first 4-D output, how many convolutions ran before it
    and how often it ran. Calls from other threads (a shared, cached model) are ignored."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[str, tuple[int, ...], int]] = {}
        self.calls: dict[str, int] = {}
        self.convs_done = 0  # Conv2d calls finished so far: how deep in the network an output is
        self._thread = threading.get_ident()

    def hook(self, name: str, is_conv: bool, needs_conv_before: bool):
        def on_forward(module, inputs, output):
            if threading.get_ident() != self._thread:
                return
            self.convs_done += is_conv
            self.calls[name] = self.calls.get(name, 0) + 1
            if needs_conv_before and self.convs_done == 0:
                return
            if isinstance(output, torch.Tensor) and output.ndim == 4 and name not in self.seen:
                self.seen[name] = (type(module).__name__, tuple(output.shape[1:]), self.convs_done)

        return on_forward


def candidate_layers(model: nn.Module, input_shape: Sequence[int]) -> list[LayerInfo]:
    """Layers a CAM can use: convolutions, the blocks that contain them, and activation modules after a
    convolution -- each only if it outputs a feature map ``(N, C, h, w)`` and runs exactly once per
    forward pass (a ReLU module shared inside a ResNet block runs twice, so its map would be ambiguous).

    ``input_shape`` is ``(C, H, W)``. Runs the model once on zeros (no gradients, mode restored, hooks
    removed) and lists the candidates in execution order.
    """
    if len(input_shape) != 3:
        raise CamError("input_shape must be (C, H, W); got {input_shape}.", input_shape=tuple(input_shape))
    recorder = _CandidateRecorder()
    handles = []
    for name, module in model.named_modules():
        if not name:
            continue
        if _has_conv(module):
            hook = recorder.hook(name, isinstance(module, nn.Conv2d), needs_conv_before=False)
        elif isinstance(module, _ACTIVATIONS):
            hook = recorder.hook(name, False, needs_conv_before=True)
        else:
            continue
        handles.append(module.register_forward_hook(hook))
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, *input_shape, device=model_device(model)))
    except RuntimeError as exc:
        raise CamError(
            "The model does not accept inputs of shape {input_shape}: {exc}",
            input_shape=tuple(input_shape),
            exc=exc,
        ) from exc
    finally:
        for h in handles:
            h.remove()
    total = max(recorder.convs_done - 1, 1)
    return [
        LayerInfo(name, kind, shape, min(max(done - 1, 0) / total, 1.0))
        for name, (kind, shape, done) in recorder.seen.items()
        if recorder.calls.get(name) == 1
    ]


def suggest_layer(layers: Sequence[LayerInfo]) -> str:
    """A sensible default: the last candidate (in execution order) whose map has at least 2x2 cells.

    Blocks finish after the convolutions inside them, so for ResNet this is ``layer4`` itself; when the
    last stage is a single cell for this input size, it steps back to the previous stage.
    """
    if not layers:
        raise CamError("This model has no convolutional layer, so there is nothing to compute a CAM on.")
    usable = [info for info in layers if info.cells >= MIN_SUGGESTED_CELLS] or list(layers)
    return usable[-1].name


def spread_layers(names: Sequence[str], count: int) -> list[str]:
    """Up to ``count`` of ``names`` (layers in execution order), spread from early to late and ending with
    the last one: the layers worth comparing side by side.

    Every ``len(names) // count``-th layer counting back from the last, so a short list keeps its last
    ``count`` layers. Raises :class:`CamError` for a ``count`` below 1.
    """
    if count < 1:
        raise CamError("count must be at least 1 layer, got {count}.", count=count)
    names = list(names)
    return names[:: -max(1, len(names) // count)][:count][::-1]


# informative_layer: a layer is informative when at most this share of the sample's maps is flat, and it
# tries at most this many layers (late to early) before falling back on suggest_layer.
MAX_FLAT_SHARE = 0.5
MAX_LAYERS_TRIED = 6


def informative_layer(
    layers: Sequence[LayerInfo], flat_share: Callable[[str], float], preferred: str = ""
) -> tuple[str, str]:
    """The default layer for a run's CAMs: the last spatial layer (at least 2x2 cells) whose maps are not
    flat, and one sentence on why it was chosen.

    ``flat_share(name)`` is the share of flat maps at that layer for the predicted class on a few
    validation images (the caller computes them: :mod:`cnndash.explain.cam` builds on this module). ``preferred``
    (the model's usual CAM layer) is tried first when it is spatial.
    """
    if not layers:
        raise CamError("This model has no convolutional layer, so there is nothing to compute a CAM on.")
    usable = [info for info in layers if info.cells >= MIN_SUGGESTED_CELLS]
    order = [info.name for info in reversed(usable)]
    if preferred in order:
        order.remove(preferred)
        order.insert(0, preferred)
    flat_ones = []
    for name in order[:MAX_LAYERS_TRIED]:
        share = flat_share(name)
        if share <= MAX_FLAT_SHARE:
            if flat_ones:
                return name, Phrase(
                    N_("{name} is the last layer with at least {cells} cells whose map is not flat ({flat} gave "
                       "flat maps) for the predicted class on a few validation images."),
                    name=name, cells=MIN_SUGGESTED_CELLS, flat=", ".join(flat_ones),
                )  # fmt: skip
            return name, Phrase(
                N_("{name} is the last layer with at least {cells} cells whose map is not flat for the "
                   "predicted class on a few validation images."),
                name=name, cells=MIN_SUGGESTED_CELLS,
            )  # fmt: skip
        flat_ones.append(f"{name}: {share:.0%} flat")
    fallback = suggest_layer(layers)
    return fallback, Phrase(
        N_("{name} is the last layer with at least {cells} cells; every layer tried gave mostly flat maps on "
           "a few validation images, so expect little contrast (try another method)."),
        name=fallback, cells=MIN_SUGGESTED_CELLS,
    )  # fmt: skip


def layer_advice(info: LayerInfo, input_size: tuple[int, int]) -> str:
    """One sentence on what a CAM at this layer can and cannot show."""
    h, w = info.output_shape[1:]
    cell = math.ceil(max(input_size[0] / h, input_size[1] / w))
    if info.cells == 1:
        return Phrase(
            N_("{name} outputs a single cell (1x1): any CAM here is flat and says nothing about where. "
               "Pick an earlier layer."),
            name=info.name,
        )  # fmt: skip
    grid = {"h": h, "w": w, "cell": cell}
    if info.depth >= LATE_DEPTH:
        return Phrase(
            N_("Late layer ({h}x{w} cells of about {cell} px): features are semantic and class-specific, so "
               "the map follows the object the class depends on, but it is coarse."),
            **grid,
        )  # fmt: skip
    if info.depth >= MIDDLE_DEPTH:
        return Phrase(
            N_("Middle layer ({h}x{w} cells of about {cell} px): parts and textures; sharper than the last "
               "layer, less class-specific."),
            **grid,
        )  # fmt: skip
    return Phrase(
        N_("Early layer ({h}x{w} cells of about {cell} px): sharp, but it reacts to edges and colours, not "
           "to the class; maps here often highlight every contrast in the image."),
        **grid,
    )  # fmt: skip


def flat_notes(cam: torch.Tensor, flat: torch.Tensor) -> list[str]:
    """A plain-language note on why some of a batch's CAMs (``cam``, raw) are ``flat`` (none when none is)."""
    if not flat.any():
        return []
    h, w = cam.shape[-2:]
    template = (
        N_(
            "{flat} of {maps} maps are flat: the layer's map has a single cell ({h}x{w}); pick an earlier layer."
        )
        if h * w == 1
        else N_(
            "{flat} of {maps} maps are flat: no location raises the class score more than another (after the "
            "ReLU the map is constant); try another layer, class or method."
        )
    )
    return [Phrase(template, flat=int(flat.sum()), maps=len(flat), h=h, w=w)]
