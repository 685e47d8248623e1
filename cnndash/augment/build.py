"""From a validated spec to torchvision: the ``v2.Compose`` and standalone Python code that builds it.

Both read the spec the same way (lists become tuples, dtype and policy names become torch objects), so
with the same ``torch.manual_seed`` the Compose and the exported code give identical outputs. The exported
code first converts a PIL image as cnndash's training decodes one (:data:`DECODE_SOURCE`, the rule of
:func:`cnndash.preprocess.convert_mode` to :func:`~cnndash.preprocess.lone_image_mode`): a CMYK photo, a
palette GIF or a transparent PNG gets the pixels the preview and training give it (transparency on white),
not the ones PIL's own ``convert`` or torchvision would make of it.
"""

from __future__ import annotations

from typing import Any

from torchvision.transforms import v2

from cnndash.augment.checks import step_error, validate_spec
from cnndash.augment.ops import DTYPES, POLICIES, Spec
from cnndash.preprocess import GRAY_MODES, SIXTEEN_BIT_MODES
from cnndash.text import N_


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
            raise step_error(
                index, op, None, N_("torchvision refuses these arguments: {exc}"), exc=exc
            ) from None
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


# The exported code's decoding: cnndash.preprocess.convert_mode(image, lone_image_mode(image.mode)), written
# out so the code needs only Pillow, NumPy and torchvision (tests check both agree on every mode).
DECODE_SOURCE = f"""GRAY_MODES = {sorted(GRAY_MODES)!r}
SIXTEEN_BIT_MODES = {sorted(SIXTEEN_BIT_MODES)!r}


def as_training_decodes(image):
    \"\"\"A PIL image as cnndash's training decodes it: 16-bit grayscale scaled to 8 bits, transparent pixels
    composited on white, then grayscale modes as "L" and every other mode (CMYK, palette, RGBA) as "RGB".\"\"\"
    mode = "L" if image.mode in GRAY_MODES else "RGB"
    if image.mode in SIXTEEN_BIT_MODES:
        pixels = np.asarray(image)
        if pixels.dtype != np.uint16:
            pixels = np.clip(pixels, 0, 65535)
        image = Image.fromarray((pixels >> 8).astype(np.uint8), "L")
    if "A" in image.mode.upper() or "transparency" in image.info:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image if image.mode == mode else image.convert(mode)
"""


def pipeline_code(spec: Spec) -> str:
    """Standalone Python source defining ``transform``, equal in effect to ``build_pipeline(spec)`` on what
    training feeds it: its first step converts a PIL image of any mode as training decodes one."""
    steps = validate_spec(spec)
    build_steps(steps)  # refuse to export what would not build
    lines = [
        "# Augmentation pipeline exported from cnndash.",
        "# transform(image) takes a PIL image (any mode) or a uint8 tensor (C, H, W); with the same",
        "# torch.manual_seed it gives the same outputs as the cnndash preview. A PIL image is first",
        "# converted as cnndash's training decodes it (CMYK, palette, transparency on white).",
        "import numpy as np",
        "import torch",
        "from PIL import Image",
        "from torchvision.transforms import v2",
        "",
        DECODE_SOURCE,
        "",
        "transform = v2.Compose(",
        "    [",
        "        v2.Lambda(as_training_decodes, Image.Image),",
    ]
    for step in steps:
        op = step["op"]
        args = ", ".join(f"{k}={_literal(op, k, v)}" for k, v in step.items() if k != "op")
        lines.append(f"        v2.{op}({args}),")
    lines += ["    ]", ")", ""]
    return "\n".join(lines)
