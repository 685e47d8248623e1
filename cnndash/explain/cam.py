"""Class activation maps: where a trained CNN looks when it predicts a class.

One small base class, :class:`BaseCAM` (in :mod:`cnndash.explain.cam_base`), owns the forward hook on the target layer as a context manager
(handles removed in :meth:`BaseCAM.release`, called from ``__exit__``; nothing is left to ``__del__`` and
no exception is swallowed). Each method is a subclass that overrides one method: ``cam_weights`` (one
weight per channel) or, for methods that are not a weighted channel sum, ``cam_image``.

Only the backward work that is needed is done. The part of the network before the target layer runs
without autograd; the hook swaps the layer's output for a fresh leaf tensor, switches autograd on for the
rest of the forward pass, and ``torch.autograd.grad(score, activation)`` then differentiates only the
layers after the target layer -- no parameter gradients, no ``.grad`` written anywhere, nothing changed on
the model. Because the downstream layers receive a copy of the activation, in-place ReLUs after the
target layer cannot corrupt it.

Definitions follow the pytorch-grad-cam package (used in the tests as an oracle, never imported here):
the class score is the raw logit, the map is ``ReLU(sum_c w_c A_c)`` at the layer's resolution, then it is
upsampled bilinearly to the input size and min-max scaled to ``[0, 1]``. A map whose raw values do not
vary (all zero, or constant) is reported as ``flat`` and returned as all zeros, never stretched into noise
and never NaN.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cnndash.explain.cam_base import BaseCAM as BaseCAM
from cnndash.explain.cam_base import CamResult as CamResult
from cnndash.explain.cam_base import check_input
from cnndash.explain.target_layers import CamError, model_device

# Choosing the layer lives in cnndash.explain.target_layers; the Grad-CAM page still imports these from here.
from cnndash.explain.target_layers import LayerInfo as LayerInfo
from cnndash.explain.target_layers import candidate_layers as candidate_layers
from cnndash.explain.target_layers import layer_advice as layer_advice
from cnndash.explain.target_layers import resolve_layer as resolve_layer
from cnndash.explain.target_layers import suggest_layer as suggest_layer
from cnndash.modes import eval_mode
from cnndash.text import N_


class GradCAM(BaseCAM):
    """Grad-CAM (Selvaraju et al. 2017): channel weight = spatial mean of the gradient."""

    name = "gradcam"
    label = "Grad-CAM"

    def cam_weights(self, activations, grads, x, targets):
        return grads.mean(dim=(2, 3))


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++ (Chattopadhyay et al. 2018, eq. 19), with the exponential-score closed form."""

    name = "gradcam++"
    label = "Grad-CAM++"
    eps = 1e-6  # pytorch-grad-cam's guard against 0/0; the same value keeps the maps equal to the oracle's

    def cam_weights(self, activations, grads, x, targets):
        g2 = grads.pow(2)
        g3 = g2 * grads
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + sum_a * g3 + self.eps)
        alpha = torch.where(grads != 0, alpha, torch.zeros_like(alpha))
        return (grads.clamp_min(0) * alpha).sum(dim=(2, 3))


class XGradCAM(BaseCAM):
    """XGrad-CAM (Fu et al. 2020): gradients weighted by the normalised activation."""

    name = "xgradcam"
    label = "XGrad-CAM"
    eps = 1e-7  # pytorch-grad-cam's value (see GradCAMPlusPlus.eps)

    def cam_weights(self, activations, grads, x, targets):
        sum_a = activations.sum(dim=(2, 3), keepdim=True)
        return (grads * activations / (sum_a + self.eps)).sum(dim=(2, 3))


class LayerCAM(BaseCAM):
    """Layer-CAM (Jiang et al. 2021): per-location weights, the positive gradient times the activation."""

    name = "layercam"
    label = "Layer-CAM"

    def cam_image(self, activations, grads, x, targets):
        return (grads.clamp_min(0) * activations).sum(dim=1)


class EigenCAM(BaseCAM):
    """Eigen-CAM (Muhammad & Yeasin 2020): projection on the first principal component; class-agnostic.

    The sign of a principal component is arbitrary, so the projection is flipped when its largest
    magnitude is negative (the salient region then comes out positive).
    """

    name = "eigencam"
    label = N_("Eigen-CAM (class-agnostic)")
    uses_gradients = False

    def cam_image(self, activations, grads, x, targets):
        n, c, h, w = activations.shape
        flat = activations.double().reshape(n, c, h * w).transpose(1, 2)  # (N, hw, C)
        flat = flat - flat.mean(dim=1, keepdim=True)
        _, _, vh = torch.linalg.svd(flat, full_matrices=False)
        proj = (flat @ vh[:, 0, :, None])[..., 0]  # (N, hw)
        flip = proj.amin(dim=1).abs() > proj.amax(dim=1).abs()
        proj = torch.where(flip[:, None], -proj, proj)
        return proj.reshape(n, h, w).float()


class ScoreCAM(BaseCAM):
    """Score-CAM (Wang et al. 2020): each channel masks the input; weight = softmax of the masked scores.

    Gradient-free but slow: one extra forward pass per channel and image (batched).
    """

    name = "scorecam"
    label = N_("Score-CAM (slow)")

    uses_gradients = False
    batch_size: int = 32  # masked copies per forward pass: bounds the memory of one extra pass
    eps = 1e-8  # pytorch-grad-cam's value (see GradCAMPlusPlus.eps)

    def cam_weights(self, activations, grads, x, targets):
        n, c = activations.shape[:2]
        up = F.interpolate(activations, size=x.shape[-2:], mode="bilinear", align_corners=True)
        lo = up.flatten(2).amin(2)[:, :, None, None]
        hi = up.flatten(2).amax(2)[:, :, None, None]
        up = (up - lo) / (hi - lo + self.eps)
        scores = torch.empty(n, c, device=x.device)
        for i in range(n):
            for start in range(0, c, self.batch_size):
                masks = up[i, start : start + self.batch_size, None]  # (b, 1, H, W)
                out = self.model(x[i : i + 1] * masks)
                scores[i, start : start + masks.shape[0]] = out[:, targets[i]].float()
        return torch.softmax(scores, dim=1)


CAM_METHODS: dict[str, type[BaseCAM]] = {
    cls.name: cls for cls in (GradCAM, GradCAMPlusPlus, XGradCAM, LayerCAM, EigenCAM, ScoreCAM)
}
METHOD_LABELS: dict[str, str] = {name: cls.label for name, cls in CAM_METHODS.items()}


def cam_class(method: str) -> type[BaseCAM]:
    """The CAM class for a method name such as ``"gradcam"`` (case-insensitive)."""
    key = method.strip().lower().replace("-", "").replace("_", "").replace(" ", "")
    key = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++"}.get(key, key)
    if key not in CAM_METHODS:
        raise CamError(
            "Unknown CAM method {method}; choose one of {cam_methods}.",
            method=repr(method),
            cam_methods=", ".join(CAM_METHODS),
        )
    return CAM_METHODS[key]


def compute_cam_result(
    model: nn.Module,
    target_layer: nn.Module | str,
    input_tensor: torch.Tensor,
    target_class: int | Sequence[int] | None = None,
    method: str = "gradcam",
) -> CamResult:
    """Like :func:`compute_cam` but returns the full :class:`CamResult` (raw maps, flat flags, logits)."""
    cls = cam_class(method)
    with cls(model, target_layer) as cam:
        return cam(input_tensor, target_class)


def compute_cam(
    model: nn.Module,
    target_layer: nn.Module | str,
    input_tensor: torch.Tensor,
    target_class: int | Sequence[int] | None = None,
    method: str = "gradcam",
) -> np.ndarray:
    """Class activation maps of shape ``(N, H, W)`` in ``[0, 1]`` for an ``(N, C, H, W)`` batch.

    ``target_layer`` is a module of ``model`` or its dotted name; ``target_class`` an int, one int per
    image, or None for the predicted class. Flat maps come back all zero (see :func:`compute_cam_result`
    for the flags). No hooks are left behind; the model's mode and ``requires_grad`` flags are unchanged.
    """
    return compute_cam_result(model, target_layer, input_tensor, target_class, method).maps


def predict_probabilities(model: nn.Module, input_tensor: torch.Tensor) -> np.ndarray:
    """Softmax class probabilities ``(N, num_classes)`` of ``model`` in eval mode (mode restored)."""
    check_input(input_tensor)
    with eval_mode(model), torch.no_grad():
        logits = model(input_tensor.to(model_device(model), torch.float32))
    return torch.softmax(logits.float(), dim=1).cpu().numpy()
