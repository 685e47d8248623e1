"""Export a layer stack as standalone PyTorch source: a script that builds ``model`` and prints its output
shape, with every inferred ``in`` value written out explicitly."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import Any

from cnndash.stack.parse import resolve_stack

__all__ = ["stack_code"]

# Constructor arguments written positionally, as the PyTorch docs and tutorials write them.
_POSITIONAL = {
    "Conv2d": ("in_channels", "out_channels"),
    "ConvTranspose2d": ("in_channels", "out_channels"),
    "BatchNorm2d": ("num_features",),
    "Linear": ("in_features", "out_features"),
    "AdaptiveAvgPool2d": ("output_size",),
}


def _layer_code(kind: str, kwargs: Mapping[str, Any]) -> str:
    positional = _POSITIONAL.get(kind, ())
    args = [repr(kwargs[name]) for name in positional]
    args += [f"{name}={value!r}" for name, value in kwargs.items() if name not in positional]
    return f"nn.{kind}({', '.join(args)})"


def stack_code(
    layers: Sequence[Mapping[str, Any]],
    input_shape: Sequence[int],
    *,
    residual: bool = False,
    title: str = "Layer stack",
    failure: str = "",
) -> str:
    """Standalone Python source defining ``model`` (and ``input_shape``) for the stack; running it as a
    script prints the output shape. Inferred ``in`` values are written out explicitly.

    ``failure``: why the stack does not run on ``input_shape`` (the shape trace's diagnosis). The code is
    then marked as broken in its docstring and in a comment, so nobody mistakes it for a working model.
    """
    resolved = resolve_stack(layers, input_shape)
    shape = tuple(int(v) for v in input_shape)
    body = "".join(f"    {_layer_code(kind, kwargs)},\n" for kind, kwargs in resolved)
    safe_title = " ".join(str(title).replace('"', "'").split())
    if failure:
        warning = "WARNING: this stack fails with a shape error: " + " ".join(str(failure).split())
        lines = [f'"""{safe_title} — exported from cnndash. DOES NOT RUN on input {shape}."""', ""]
        lines += [f"# {part}" for part in textwrap.wrap(warning, width=98)] + [""]
    else:
        lines = [f'"""{safe_title} — exported from cnndash."""', ""]
    lines += ["import torch", "from torch import nn", ""]
    if residual:
        lines += [
            "",
            "class ResidualBlock(nn.Module):",
            '    """relu(body(x) + x): a residual block with an identity shortcut."""',
            "",
            "    def __init__(self, body: nn.Sequential) -> None:",
            "        super().__init__()",
            "        self.body = body",
            "        self.relu = nn.ReLU()",
            "",
            "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
            "        return self.relu(self.body(x) + x)",
            "",
            "",
            f"model = ResidualBlock(nn.Sequential(\n{body}))",
        ]
    else:
        lines.append(f"model = nn.Sequential(\n{body})")
    lines += [
        f"input_shape = (1, {shape[0]}, {shape[1]}, {shape[2]})  # (N, C, H, W)",
        "",
        'if __name__ == "__main__":',
        "    with torch.no_grad():",
        "        print(model.eval()(torch.zeros(input_shape)).shape)",
        "",
    ]
    return "\n".join(lines)
