"""Lesson 9: the classic networks and blocks as shape traces (shapes, parameters, MACs, receptive field).

Every model is built on the ``meta`` device (no memory, no weights, milliseconds even for VGG-16) and
traced by :func:`cnndash.trace.trace_shapes`. AlexNet and VGG-16 *are* torchvision's models; the residual
block's parameter count is checked against torchvision's ``BasicBlock`` in the tests. LeNet, NiN, the
Inception block and the dense block follow the tutorials (d2l) and the papers. Where the tutorials'
own code is wrong, ``Network.correction`` says what and why, and ``mistake`` builds the wrong version so
the page can show how the trace fails.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torchvision
from torch import nn

from cnndash.lessons.errors import LessonError
from cnndash.text import N_
from cnndash.trace import ShapeTrace, trace_shapes

__all__ = [
    "NETWORKS",
    "DenseBlock",
    "Inception",
    "Network",
    "NetworkTrace",
    "Residual",
    "lenet",
    "nin",
    "trace_network",
]


class Inception(nn.Module):
    """GoogLeNet's block: 1×1, 1×1→3×3, 1×1→5×5 and 3×3-pool→1×1 branches, concatenated on channels."""

    def __init__(self, cin: int, c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> None:
        super().__init__()
        self.b1 = nn.Sequential(nn.Conv2d(cin, c1, 1), nn.ReLU())
        self.b2 = nn.Sequential(
            nn.Conv2d(cin, c2[0], 1), nn.ReLU(), nn.Conv2d(c2[0], c2[1], 3, padding=1), nn.ReLU()
        )
        self.b3 = nn.Sequential(
            nn.Conv2d(cin, c3[0], 1), nn.ReLU(), nn.Conv2d(c3[0], c3[1], 5, padding=2), nn.ReLU()
        )
        self.b4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1), nn.Conv2d(cin, c4, 1), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], dim=1)


class Residual(nn.Module):
    """ResNet's basic block: two 3×3 convolutions with BatchNorm, output = ReLU(F(x) + x)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + x)


class DenseBlock(nn.Module):
    """DenseNet's block: each BN-ReLU-3×3 conv sees every earlier output (concatenated) and adds
    ``growth`` channels."""

    def __init__(self, layers: int, cin: int, growth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(
                nn.BatchNorm2d(cin + i * growth), nn.ReLU(), nn.Conv2d(cin + i * growth, growth, 3, padding=1)
            )
            for i in range(layers)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = torch.cat([x, layer(x)], dim=1)
        return x


def lenet() -> nn.Sequential:
    """LeNet-5 as in d2l (sigmoid activations, padding 2 so 28×28 MNIST digits fit)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(), nn.AvgPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(), nn.AvgPool2d(2, 2), nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(), nn.Linear(120, 84), nn.Sigmoid(), nn.Linear(84, 10),
    )  # fmt: skip


def _nin_block(cin: int, cout: int, k: int, s: int, p: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, s, p),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 1),
        nn.ReLU(),
        nn.Conv2d(cout, cout, 1),
        nn.ReLU(),
    )


def nin() -> nn.Sequential:
    """Network in Network as in d2l: no fully connected layers, a global average pool per class."""
    return nn.Sequential(
        _nin_block(1, 96, 11, 4, 0), nn.MaxPool2d(3, 2),
        _nin_block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
        _nin_block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2), nn.Dropout(0.5),
        _nin_block(384, 10, 3, 1, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
    )  # fmt: skip


def _vgg16_with_4097() -> nn.Module:
    model = torchvision.models.vgg16()
    model.classifier[6] = nn.Linear(4097, 1000)
    return model


@dataclass(frozen=True)
class Network:
    name: str
    idea: str  # the design idea, two sentences
    input_shape: tuple[int, int, int]
    build: Callable[[], nn.Module]
    preset: str | None = None  # the layer-stack editor's preset with this architecture
    reference: str = ""  # where the numbers come from
    correction: str = ""  # a mistake in the tutorials' code, and the right numbers
    mistake: Callable[[], nn.Module] | None = None  # the tutorials' wrong version, to trace


NETWORKS: dict[str, Network] = {
    net.name: net
    for net in (
        Network(
            N_("LeNet"),
            N_(
                "Two convolution + pooling stages turn a 28×28 digit into 16 maps of 5×5, and three fully connected "
                "layers classify them. It is the pattern every later network keeps: convolutions find local "
                "features, pooling shrinks the map, a classifier sits on top."
            ),
            (1, 28, 28),
            lenet,
            preset="LeNet-5 (1×28×28)",
            reference=N_(
                "d2l's LeNet (sigmoid); the editor's preset uses ReLU — same shapes and parameters."
            ),
        ),
        Network(
            N_("AlexNet"),
            N_(
                "A much deeper and wider LeNet with ReLU, max pooling and dropout, trained on GPUs on ImageNet. "
                "An 11×11 stride-4 first layer shrinks 224 px to 55 quickly; most parameters sit in the 4096-wide "
                "fully connected head."
            ),
            (3, 224, 224),
            torchvision.models.alexnet,
            preset="AlexNet (3×224×224)",
            reference=N_("torchvision.models.alexnet (61,100,840 parameters)."),
            correction=N_(
                "The tutorial labels the first max pool '224 -> 55': the 11×11 stride-4 convolution "
                "makes 55×55 and the pool after it 27×27 (then 13 and 6), as the trace shows. Its channel "
                "widths (96, 256, 384, 384, 256) are the paper's; torchvision's are 64, 192, 384, 256, 256."
            ),
        ),
        Network(
            N_("VGG-16"),
            N_(
                "Only 3×3 convolutions, stacked in five blocks that each end in a 2×2 max pool and double the "
                "channels. Two stacked 3×3 layers see 5×5 pixels with fewer weights than one 5×5 layer."
            ),
            (3, 224, 224),
            torchvision.models.vgg16,
            preset="VGG-16 (3×224×224)",
            reference=N_("torchvision.models.vgg16 (138,357,544 parameters)."),
            correction=N_(
                "The tutorial's head ends in nn.Linear(4097, num_classes), but the layer before it "
                "outputs 4096 features: the last layer must be nn.Linear(4096, num_classes) (4,097,000 "
                "weights and biases for 1000 classes). Its version also adds BatchNorm after each convolution, "
                "which is torchvision's vgg16_bn, not VGG-16."
            ),
            mistake=_vgg16_with_4097,
        ),
        Network(
            N_("NiN"),
            N_(
                "Each block is a convolution followed by two 1×1 convolutions, a small fully connected network "
                "applied at every pixel. There is no fully connected head: the last block outputs one map per "
                "class and a global average pool turns each map into a score."
            ),
            (1, 224, 224),
            nin,
            reference=N_("d2l's NiN for 10 classes on 224×224 grey images."),
        ),
        Network(
            N_("Inception block"),
            N_(
                "Four branches look at the same input with 1×1, 3×3 and 5×5 windows and a 3×3 max pool, and "
                "their outputs are stacked along the channels. The 1×1 convolutions before the larger windows "
                "cut the channels first, which keeps the block cheap."
            ),
            (192, 28, 28),
            lambda: Inception(192, 64, (96, 128), (16, 32), 32),
            reference=N_("GoogLeNet's block 3a: 64 + 128 + 32 + 32 = 256 output channels."),
        ),
        Network(
            N_("ResNet residual block"),
            N_(
                "The block learns only the change F(x) to its input and adds x back, so the identity is easy to "
                "learn and gradients reach early layers through the shortcut. This is what makes networks of "
                "100+ layers trainable."
            ),
            (64, 56, 56),
            lambda: Residual(64),
            preset="ResNet basic block (64×56×56)",
            reference=N_("ResNet-18's first block; same parameters as torchvision's BasicBlock(64, 64)."),
        ),
        Network(
            N_("DenseNet dense block"),
            N_(
                "Each layer gets every earlier layer's output, concatenated, and adds a few new channels (the "
                "growth rate). Features are reused instead of relearned, so the layers can stay narrow."
            ),
            (64, 56, 56),
            lambda: DenseBlock(4, 64, 32),
            reference=N_("d2l's dense block: 4 layers with growth rate 32, 64 → 64 + 4·32 = 192 channels."),
        ),
    )
}


@dataclass(frozen=True)
class NetworkTrace:
    trace: ShapeTrace
    output_shape: (
        tuple[int, ...] | None
    )  # the whole model's output (a block's concatenation), None if it fails

    @property
    def total_macs(self) -> int:
        return sum(row.macs for row in self.trace.rows)


def trace_network(name: str, *, mistake: bool = False) -> NetworkTrace:
    """The trace of ``NETWORKS[name]`` on its input (on the meta device); ``mistake=True`` traces the
    tutorial's wrong version instead."""
    if name not in NETWORKS:
        raise LessonError(
            "Unknown network {name}; pick one of {networks}.", name=repr(name), networks=", ".join(NETWORKS)
        )
    network = NETWORKS[name]
    build = network.mistake if mistake else network.build
    if build is None:
        raise LessonError("The tutorials' {name} has no mistake to show.", name=name)
    with torch.device("meta"):
        model = build()
    trace = trace_shapes(model, network.input_shape)
    if not trace.ok:
        return NetworkTrace(trace, None)
    with torch.no_grad():
        output = model.eval()(torch.empty((1, *network.input_shape), device="meta"))
    return NetworkTrace(trace, tuple(output.shape))
