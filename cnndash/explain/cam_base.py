"""The machinery every class activation map shares: :class:`BaseCAM` and its :class:`CamResult`.

:class:`BaseCAM` owns the forward hook on the target layer as a context manager (handles removed in
:meth:`BaseCAM.release`, called from ``__exit__``; nothing is left to ``__del__`` and no exception is
swallowed); the methods in :mod:`cnndash.explain.cam` are subclasses that override ``cam_weights`` or
``cam_image``. The part of the network before the target layer runs without autograd; the hook swaps the
layer's output for a fresh leaf tensor and switches autograd on for the rest of the forward pass, so
``torch.autograd.grad(score, activation)`` differentiates only the layers after it -- no parameter
gradients, nothing changed on the model. :func:`scale_maps` upsamples and min-max scales the raw maps and
flags the flat ones.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnndash.explain.target_layers import CamError, flat_notes, model_device, resolve_layer
from cnndash.modes import eval_mode

# A map is "flat" when its raw range is below this fraction of its largest absolute value.
FLAT_RTOL = 1e-4


@dataclass
class CamResult:
    """Everything one CAM call produces, for a batch of ``N`` images."""

    maps: np.ndarray  # (N, H, W) float32 in [0, 1] at the input's size; all zero where flat
    raw: np.ndarray  # (N, h, w) float32 at the layer's resolution, after the ReLU, before scaling
    flat: np.ndarray  # (N,) bool: the raw map carries no spatial information
    target_class: list[int]  # the class each map explains
    logits: np.ndarray  # (N, num_classes) model outputs for the unmodified input
    method: str
    layer: str
    notes: list[str] = field(default_factory=list)  # plain-language remarks (e.g. why a map is flat)

    @property
    def probabilities(self) -> np.ndarray:
        """Softmax of :attr:`logits`, shape ``(N, num_classes)``."""
        z = self.logits - self.logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    @property
    def predicted(self) -> list[int]:
        return [int(i) for i in self.logits.argmax(axis=1)]


def check_input(input_tensor: torch.Tensor) -> None:
    if not isinstance(input_tensor, torch.Tensor) or input_tensor.ndim != 4:
        shape = tuple(input_tensor.shape) if isinstance(input_tensor, torch.Tensor) else type(input_tensor)
        raise CamError(
            "input_tensor must be a batch of shape (N, C, H, W); got {shape}. Add a batch dimension with "
            "tensor.unsqueeze(0).",
            shape=shape,
        )
    if input_tensor.shape[0] == 0:
        raise CamError("input_tensor holds no images (batch size 0).")


def target_indices(target_class: int | Sequence[int] | None, logits: torch.Tensor) -> torch.Tensor:
    n, k = logits.shape
    if target_class is None:
        return logits.argmax(dim=1)
    if isinstance(target_class, (int, np.integer)):
        targets = [int(target_class)] * n
    else:
        targets = [int(t) for t in target_class]
        if len(targets) != n:
            raise CamError(
                "target_class has {count} entries for a batch of {n} images; give one per image.",
                count=len(targets),
                n=n,
            )
    bad = [t for t in targets if not 0 <= t < k]
    if bad:
        raise CamError(
            "Target class {bad} does not exist: the model has {k} classes (0..{last}).",
            bad=bad[0],
            k=k,
            last=k - 1,
        )
    return torch.tensor(targets, dtype=torch.long, device=logits.device)


class BaseCAM:
    """Hook owner and CAM pipeline; subclasses define how channels are weighted.

    Use it as a context manager::

        with GradCAM(model, "layer4") as cam:
            result = cam(batch)

    Inside the ``with`` block the model is in eval mode; on exit the hook is removed and the model's
    previous train/eval mode is restored, also when an exception propagates.
    """

    name: ClassVar[str] = ""
    label: ClassVar[str] = ""
    uses_gradients: ClassVar[bool] = True

    def __init__(self, model: nn.Module, target_layer: nn.Module | str) -> None:
        self.model = model
        self.layer_name, self.layer = resolve_layer(model, target_layer)
        self._handles: list[Any] = []
        self._modes = contextlib.ExitStack()  # restores every submodule's train/eval mode on release
        self._capturing = False
        self._thread: int | None = None  # the thread whose forward pass is being captured
        self._activations: list[torch.Tensor] = []

    # -- hook ownership -------------------------------------------------------------------------------
    def __enter__(self) -> BaseCAM:
        self._modes.enter_context(eval_mode(self.model))
        self._handles.append(self.layer.register_forward_hook(self._on_forward))
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()

    def release(self) -> None:
        """Remove the hook, drop captured tensors and restore the model's train/eval mode."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self._activations.clear()
        self._modes.close()

    def _on_forward(self, module: nn.Module, inputs: Any, output: Any) -> Any:
        # Another thread may run the same (shared, cached) model at the same time: leave its pass alone.
        if not self._capturing or threading.get_ident() != self._thread:
            return None
        if not isinstance(output, torch.Tensor) or output.ndim != 4:
            kind = (
                f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
            )
            raise CamError("Layer {layer_name} outputs {kind}, not a feature map (N, C, H, W); pick a convolutional "
                           "layer or block.", layer_name=repr(self.layer_name), kind=kind)  # fmt: skip
        # A fresh leaf: gradients stop here, so nothing before the target layer is differentiated.
        leaf = output.detach().requires_grad_(self.uses_gradients)
        self._activations.append(leaf)
        if self.uses_gradients:
            # The surrounding forward runs under no_grad; from here on autograd records (thread-local,
            # restored when the caller's no_grad block exits).
            torch.set_grad_enabled(True)
        # Downstream layers get a copy: an in-place ReLU after this layer cannot touch the activation.
        return leaf.clone()

    # -- the pipeline ---------------------------------------------------------------------------------
    def __call__(
        self, input_tensor: torch.Tensor, target_class: int | Sequence[int] | None = None
    ) -> CamResult:
        if not self._handles:
            raise RuntimeError("Use the CAM object inside a `with` block so that its hook is registered.")
        check_input(input_tensor)
        # A caller inside torch.inference_mode() (e.g. an evaluation loop) would make gradients impossible.
        with torch.inference_mode(False):
            return self._compute(input_tensor, target_class)

    def _compute(self, input_tensor: torch.Tensor, target_class: int | Sequence[int] | None) -> CamResult:
        x = input_tensor.detach().to(device=model_device(self.model), dtype=torch.float32)
        if x.is_inference():
            x = x.clone()  # an inference tensor cannot take part in autograd
        logits, activations = self._forward(x)
        targets = target_indices(target_class, logits)
        grads = None
        if self.uses_gradients:
            if not logits.requires_grad:
                raise CamError(
                    "The model's output does not depend on layer {layer_name} through autograd; pick a layer on the "
                    "path to the output.",
                    layer_name=repr(self.layer_name),
                )
            score = logits.gather(1, targets[:, None]).sum()
            (grads,) = torch.autograd.grad(score, activations)
        with torch.no_grad():
            cam = self.cam_image(activations.detach(), grads, x, targets)
            cam = torch.nan_to_num(cam.float(), nan=0.0, posinf=0.0, neginf=0.0).clamp_min(0)
            maps, flat = scale_maps(cam, tuple(x.shape[-2:]))
        return CamResult(
            maps=maps.cpu().numpy(),
            raw=cam.cpu().numpy(),
            flat=flat.cpu().numpy(),
            target_class=[int(t) for t in targets.tolist()],
            logits=logits.detach().float().cpu().numpy(),
            method=self.name,
            layer=self.layer_name,
            notes=flat_notes(cam, flat),
        )

    def _forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One forward pass that captures the target layer's output: ``(logits, activations)``."""
        self._activations.clear()
        self._thread = threading.get_ident()
        self._capturing = True
        try:
            with torch.no_grad():
                logits = self.model(x)
        except RuntimeError as exc:
            raise CamError("The model failed on an input of shape {x_shape}: {exc}. Check the image size and number "
                           "of channels the model expects.", x_shape=tuple(x.shape), exc=exc) from exc  # fmt: skip
        finally:
            self._capturing = False
        captured = list(self._activations)
        self._activations.clear()
        if not captured:
            raise CamError("Layer {layer_name} did not run in the forward pass; pick a layer the model uses.",
                           layer_name=repr(self.layer_name))  # fmt: skip
        if len(captured) > 1:
            raise CamError("Layer {layer_name} runs {n_captured} times per forward pass, so its map is ambiguous; "
                           "pick a layer that runs once.", layer_name=repr(self.layer_name), n_captured=len(captured))  # fmt: skip
        if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
            raise CamError("The model must return class scores of shape (N, num_classes).")
        return logits, captured[0]

    # -- what subclasses override -------------------------------------------------------------------------
    def cam_weights(
        self, activations: torch.Tensor, grads: torch.Tensor | None, x: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """One weight per channel, shape ``(N, C)``."""
        raise NotImplementedError

    def cam_image(
        self, activations: torch.Tensor, grads: torch.Tensor | None, x: torch.Tensor, targets: torch.Tensor
    ) -> torch.Tensor:
        """The map before ReLU and scaling, shape ``(N, h, w)``: weighted sum of the channels."""
        weights = self.cam_weights(activations, grads, x, targets)
        return torch.einsum("nc,nchw->nhw", weights, activations)


def scale_maps(cam: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Upsample ``(N, h, w)`` raw maps to ``size`` and min-max scale each to ``[0, 1]``.

    Returns ``(maps, flat)``; a flat map (range below ``FLAT_RTOL`` of its magnitude) becomes all zeros.
    """
    up = F.interpolate(cam[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    raw_flat = cam.flatten(1)
    rng = raw_flat.amax(1) - raw_flat.amin(1)
    scale = raw_flat.abs().amax(1)
    flat = (rng <= FLAT_RTOL * scale) | (scale == 0)
    lo = up.flatten(1).amin(1)[:, None, None]
    hi = up.flatten(1).amax(1)[:, None, None]
    maps = (up - lo) / (hi - lo).clamp_min(torch.finfo(up.dtype).tiny)
    maps = torch.where(flat[:, None, None], torch.zeros_like(maps), maps.clamp(0, 1))
    return maps, flat
