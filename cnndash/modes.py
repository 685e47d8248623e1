"""One way to run a model in eval mode and hand it back exactly as it came.

``model.train(was_training)`` is not a restore: it sets *every* submodule to the top module's mode, so a
frozen BatchNorm kept in eval inside a training model comes back in train mode. :func:`eval_mode` records
each submodule's own flag (and, when asked, each parameter's ``requires_grad``) and puts them all back.
Used by everything that runs a model on the user's behalf: trace, CAM, feature maps, prediction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn


@contextmanager
def eval_mode(model: nn.Module, *, freeze: bool = False) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (and with ``freeze=True`` its parameters at ``requires_grad=False``)
    for the ``with`` block; afterwards every submodule's mode and every ``requires_grad`` flag is as before.
    """
    modes = [(module, module.training) for module in model.modules()]
    grads = [(param, param.requires_grad) for param in model.parameters()] if freeze else []
    try:
        model.eval()
        for param, _ in grads:
            param.requires_grad_(False)
        yield model
    finally:
        for module, training in modes:
            module.training = training
        for param, requires_grad in grads:
            param.requires_grad_(requires_grad)
