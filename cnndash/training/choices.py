"""What a training run can be set to — model names and descriptions, transfer modes, optimisers, schedules —
as plain names, without importing torch.

:mod:`cnndash.models` and :mod:`cnndash.training.optim` re-export them; :mod:`cnndash.training.config` and
the Training form import them from here, so a first page load can draw the form and check a config before
torch (seconds on a loaded machine) has been imported.
"""

from __future__ import annotations

from cnndash.text import N_

MODEL_NAMES = ("lenet", "simplecnn", "vgg", "resnet18", "mobilenet_v2")
TRANSFER_MODES = ("all", "freeze", "lower_lr")
MODEL_DESCRIPTIONS = {
    "lenet": N_("LeNet-5 — tiny and fast, good for digits/MNIST-sized images"),
    "simplecnn": N_("SimpleCNN — the tutorials' two-block CNN"),
    "vgg": N_("Small VGG — 6 conv layers with BatchNorm, good for 32–64 px colour images"),
    "resnet18": N_("ResNet-18 — residual network (torchvision), optional ImageNet weights"),
    "mobilenet_v2": N_("MobileNetV2 — light network (torchvision), optional ImageNet weights"),
}
# Each model's name as its description starts (a page shows it translated: "Small VGG" is 小型 VGG).
MODEL_TITLES = {
    "lenet": N_("LeNet-5"),
    "simplecnn": N_("SimpleCNN"),
    "vgg": N_("Small VGG"),
    "resnet18": N_("ResNet-18"),
    "mobilenet_v2": N_("MobileNetV2"),
}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("onecycle", "cosine", "step", "constant")
