"""The default CAM layer of a trained run: :func:`cnndash.explain.target_layers.informative_layer` fed with
real maps of the run's model on a few of its validation images.

Kept apart from :mod:`cnndash.explain.target_layers` (which chooses a layer without computing a map)
because it computes maps with :mod:`cnndash.explain.cam`, which builds on that module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from torch import nn

from cnndash.explain.cam import compute_cam_result
from cnndash.explain.target_layers import LayerInfo, informative_layer
from cnndash.models import default_cam_layer

if TYPE_CHECKING:
    from cnndash.data import ImageSet
    from cnndash.runs import Run

DEFAULT_LAYER_IMAGES = 8  # validation images the candidate layers' maps are checked on


def run_default_layer(
    run: Run,
    model: nn.Module,
    dataset: ImageSet,
    layers: Sequence[LayerInfo],
    *,
    images: int = DEFAULT_LAYER_IMAGES,
    method: str = "gradcam",
) -> tuple[str, str]:
    """The last spatial layer whose ``method`` map for the predicted class is not flat on the first
    ``images`` validation images of ``dataset``, and one sentence on why (see :func:`informative_layer`).

    ``model`` is ``run``'s trained model, ``layers`` its candidates (:func:`candidate_layers`). The model's
    usual CAM layer is tried first; a model this version does not know has no preference. A handful of
    forward/backward passes: callers cache the answer per checkpoint.
    """
    try:
        preferred = default_cam_layer(run.config.get("model", ""))
    except ValueError:  # a model this version does not know: no preference
        preferred = ""
    count = min(images, len(dataset.val))
    batch = run.preprocess([dataset.val[i][0] for i in range(count)])

    def flat_share(name: str) -> float:
        return float(compute_cam_result(model, name, batch, None, method).flat.mean())

    return informative_layer(list(layers), flat_share, preferred)
