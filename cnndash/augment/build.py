"""From a validated spec to torchvision: the ``v2.Compose`` and standalone Python code that builds it.

Both read the spec the same way (lists become tuples, dtype and policy names become torch objects), so
with the same ``torch.manual_seed`` the Compose and the exported code give identical outputs.
"""

from __future__ import annotations

from typing import Any

from torchvision.transforms import v2

from cnndash.augment.checks import step_error, validate_spec
from cnndash.augment.ops import DTYPES, POLICIES, Spec


def _to_python(value: Any) -> Any:
    """JSON value -> the value torchvision gets (lists become tuples, nested)."""
    if isinstance(value, list):
        return tuple(_to_python(v) for v in value)
    return value


def _constructor_kwargs(op: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in kwargs.items():
        if op == "ToDtype" and name == "dtype":
            out[name] = DTYPES[value]
        elif op == "AutoAugment" and name == "policy":
            out[name] = POLICIES[value]
        elif op == "Normalize" and name in ("mean", "std"):
            out[name] = [float(v) for v in value]
        else:
            out[name] = _to_python(value)
    return out


def build_steps(spec: Spec) -> list[v2.Transform]:
    """The validated spec's transforms, one per step (what :func:`build_pipeline` composes)."""
    steps = validate_spec(spec)
    transforms = []
    for index, step in enumerate(steps):
        op = step["op"]
        kwargs = _constructor_kwargs(op, {k: v for k, v in step.items() if k != "op"})
        try:
            transforms.append(getattr(v2, op)(**kwargs))
        except (TypeError, ValueError) as exc:
            raise step_error(index, op, None, f"torchvision refuses these arguments: {exc}") from None
    return transforms


def build_pipeline(spec: Spec) -> v2.Compose:
    """Validate ``spec`` and build its ``torchvision.transforms.v2.Compose``."""
    return v2.Compose(build_steps(spec))


def _literal(op: str, name: str, value: Any) -> str:
    """The Python source for one argument, as :func:`_constructor_kwargs` would pass it."""
    if op == "ToDtype" and name == "dtype":
        return f"torch.{value}"
    if op == "AutoAugment" and name == "policy":
        return f"v2.AutoAugmentPolicy.{POLICIES[value].name}"
    if op == "Normalize" and name in ("mean", "std"):
        return repr([float(v) for v in value])
    return repr(_to_python(value))


def pipeline_code(spec: Spec) -> str:
    """Standalone Python source defining ``transform``, equal in effect to ``build_pipeline(spec)``."""
    steps = validate_spec(spec)
    build_steps(steps)  # refuse to export what would not build
    lines = [
        "# Augmentation pipeline exported from cnndash.",
        "# transform(image) takes a PIL image or a uint8 tensor (C, H, W); with the same",
        "# torch.manual_seed it gives the same outputs as the cnndash preview.",
        "import torch",
        "from torchvision.transforms import v2",
        "",
        "transform = v2.Compose(",
        "    [",
    ]
    for step in steps:
        op = step["op"]
        args = ", ".join(f"{k}={_literal(op, k, v)}" for k, v in step.items() if k != "op")
        lines.append(f"        v2.{op}({args}),")
    lines += ["    ]", ")", ""]
    return "\n".join(lines)
