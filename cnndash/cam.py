"""Class activation maps — the public API documented in ``shared/API.md`` (``cnndash.cam.compute_cam``).

The implementation lives in :mod:`cnndash.explain.cam` (the methods) and
:mod:`cnndash.explain.target_layers` (which layer to explain); this module is the stable import path that
other code and the tests rely on.
"""

from __future__ import annotations

from cnndash.explain.cam import (
    BaseCAM,
    CamResult,
    cam_class,
    compute_cam,
    compute_cam_result,
    predict_probabilities,
)
from cnndash.explain.target_layers import CamError, LayerInfo, candidate_layers, layer_advice, suggest_layer

__all__ = [
    "BaseCAM",
    "CamError",
    "CamResult",
    "LayerInfo",
    "cam_class",
    "candidate_layers",
    "compute_cam",
    "compute_cam_result",
    "layer_advice",
    "predict_probabilities",
    "suggest_layer",
]
