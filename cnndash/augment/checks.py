"""Validation of pipeline specs: every step checked before torchvision sees it.

A step passes three checks: its shape (a dict with a known ``op`` and JSON arguments that the torchvision
class takes), the arguments every op shares (``p``, ``size``, the named choices), and the op's own
validator from :data:`~cnndash.augment.arguments.VALIDATORS` (:mod:`cnndash.augment.arguments`, with the
number and range rules). Then the spec as a whole: the order of its steps. Every failure is an
:class:`AugmentError` naming the step and the argument.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Sequence
from typing import Any

from torchvision.transforms import v2

from cnndash.augment.arguments import VALIDATORS, Step, check_size, is_number
from cnndash.augment.ops import CHOICES, OPS, AugmentError, Spec
from cnndash.text import N_

__all__ = ["VALIDATORS", "check_step", "step_error", "validate_spec"]


# --------------------------------------------------------------------------------------------------
# Whole steps and whole specs


def _parse_step(index: int, raw: Any) -> Step:
    """A dict with a known ``op`` and plain JSON arguments, else AugmentError."""
    if not isinstance(raw, dict):
        raise AugmentError(
            "Step {index} must be a dict like {{'op': 'RandomRotation', ...}}, got {raw}.",
            step=index,
            index=index + 1,
            raw=repr(raw),
        )
    if "op" not in raw:
        raise AugmentError(
            "Step {index} has no 'op'; choose one of {ops}.", step=index, index=index + 1, ops=", ".join(OPS)
        )
    op = raw["op"]
    if op not in OPS:
        raise AugmentError(
            "Step {index}: unknown operation {op}; choose one of {ops}.",
            step=index,
            argument="op",
            index=index + 1,
            op=repr(op),
            ops=", ".join(OPS),
        )
    step = Step(index, op, {k: v for k, v in raw.items() if k != "op"})
    try:
        json.dumps(step.kwargs)
    except (TypeError, ValueError):
        raise step.fail(None, N_("arguments must be plain JSON values (numbers, strings, lists).")) from None
    return step


def _check_signature(step: Step) -> None:
    """Every argument is one the torchvision class takes, and every required one is given."""
    params = inspect.signature(getattr(v2, step.op).__init__).parameters
    allowed = [name for name in params if name not in ("self", "inplace")]
    for name in step.kwargs:
        if name not in allowed:
            if not allowed:
                raise step.fail(name, N_("unknown argument; {op} takes no arguments."), op=step.op)
            raise step.fail(
                name,
                N_("unknown argument; {op} takes {arguments}."),
                op=step.op,
                arguments=", ".join(allowed),
            )
    for name, param in params.items():
        if name in allowed and param.default is inspect.Parameter.empty and name not in step.kwargs:
            raise step.fail(name, N_("is required."))


def _check_shared_arguments(step: Step) -> None:
    """The arguments several ops share: a probability ``p``, a ``size``, a named choice."""
    for name, value in step.kwargs.items():
        if name == "p":
            ok = is_number(value) and 0.0 <= value <= 1.0
            step.require("p", ok, N_("probability must be between 0 and 1, got {value}."), value=repr(value))
        elif name == "size":
            check_size(step, name, value)
        elif name in CHOICES and value not in CHOICES[name]:
            raise step.fail(
                name,
                N_("use one of {choices}, got {value}."),
                choices=", ".join(CHOICES[name]),
                value=repr(value),
            )


def check_step(index: int, raw: Any) -> Step:
    """Check one step of a spec on its own (see the module docstring); return it parsed."""
    step = _parse_step(index, raw)
    _check_signature(step)
    _check_shared_arguments(step)
    validator = VALIDATORS.get(step.op)
    if validator is not None:
        validator(step)
    return step


def validate_spec(spec: Any) -> Spec:
    """Check a spec without building it; return it as a list of plain dicts (a deep copy).

    Beyond each step on its own, the order matters: Normalize needs a float image (a ToDtype step with
    ``scale=True`` before it), and auto-augment policies need uint8 images (before any float ToDtype).
    """
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise AugmentError("A pipeline spec must be a list of steps, got {kind}.", kind=type(spec).__name__)
    steps = [copy.deepcopy(dict(step)) if isinstance(step, dict) else step for step in spec]
    float_seen = False
    for index, raw in enumerate(steps):
        step = check_step(index, raw)
        if step.op == "ToDtype":
            float_seen = step.kwargs["dtype"] != "uint8"
            if float_seen and not step.kwargs.get("scale", False):
                raise step.fail(
                    "scale",
                    N_(
                        "set scale=True: without it uint8 pixels stay 0–255 as floats and Normalize misbehaves."
                    ),
                )
        elif step.op == "Normalize" and not float_seen:
            raise step.fail(
                None,
                N_(
                    "Normalize needs a float image: add a ToDtype step (dtype 'float32', scale=True) before it."
                ),
            )
        elif float_seen and OPS[step.op].group == "auto":
            raise step.fail(None, N_("auto-augment policies need uint8 images: move it before ToDtype."))
    return steps


def step_error(index: int, op: str, argument: str | None, problem: str, /, **params: Any) -> AugmentError:
    """An :class:`AugmentError` for step ``index`` (an ``op``) and ``argument``, worded like every other:
    ``problem`` a marked template, filled with ``params``."""
    return Step(index, op, {}).fail(argument, problem, **params)
