"""Defaults from the data: the model, image size, batch size, epochs and learning rate of one click.

:func:`choose_settings` looks at a dataset (how many images, how large, grayscale or colour, how many classes)
and a time budget, and returns an :class:`AutoChoice`: a :class:`TrainConfig` and, for every setting, the
reason in one sentence. The Training page's one click and ``python -m cnndash train`` without ``--model``
(or with ``--model auto``) both call it, so they train the same run.

The rules come from ``benchmarks/time_to_accuracy.py`` (the table in docs/training.md): on this project's
CPU the small models at the photos' own size beat ResNet-18 squeezed to 32 px, and ResNet-18 from scratch
wants a lower peak learning rate than the small models. A run's time is estimated by
:mod:`cnndash.training.budget` from the model's multiply-accumulates and a fixed speed per device type, so
the same data and budget always give the same choice — on any machine of that type — and tests can pin it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from functools import partial

from PIL import Image

from cnndash.data import ImageSet, load_dataset
from cnndash.device import resolve_device
from cnndash.models import (
    DEFAULT_MIN_SIZE,
    MIN_IMAGE_SIZE,
    SMALL_INPUT_MAX,
    auto_image_size,
    pipeline_output_size,
)
from cnndash.pretrained import weights_installed
from cnndash.text import N_, Phrase
from cnndash.training.budget import (
    MAX_AUTO_EPOCHS,
    MIN_AUTO_EPOCHS,
    ONE_CLICK_BUDGET_S,
    DataProfile,
    check_budget,
    estimate_seconds,
)
from cnndash.training.config import TrainConfig

SIZE_SAMPLE = 256  # image files whose headers are read for the typical size of a folder dataset
# The image sizes photos may be trained at, largest first: the photos' own size when it fits the budget.
PHOTO_SIZES = (128, 96, 64, 48, 32)
# Pretrained ResNet-18 keeps its ImageNet stem (7x7/2 conv + max-pool) only above SMALL_INPUT_MAX px: below,
# the small-input stem replaces the pretrained first layer, and the point of the weights is lost.
PRETRAINED_SIZES = (128, 96)
SMALL_DATASET = 1000  # fewer training images than this: batches of 16, for twice the updates per epoch


@dataclass(frozen=True)
class AutoChoice:
    """The chosen settings and why: ``reasons`` maps a setting's name to one sentence."""

    config: TrainConfig
    reasons: dict[str, str] = field(default_factory=dict)
    estimated_seconds: float = 0.0
    budget_s: float = ONE_CLICK_BUDGET_S

    # The chosen settings by name (the page and tests read them without going through ``config``).
    @property
    def model(self) -> str:
        return self.config.model

    @property
    def image_size(self) -> int:
        return int(self.config.image_size or 0)

    @property
    def batch_size(self) -> int:
        return self.config.batch_size

    @property
    def epochs(self) -> int:
        return self.config.epochs

    @property
    def lr(self) -> float:
        return self.config.lr

    @property
    def pretrained(self) -> bool:
        return self.config.pretrained

    def to_dict(self) -> dict:
        """What summary.json records as ``auto``: the settings chosen, why, and the time estimate."""
        chosen = {key: getattr(self.config, key) for key in self.reasons if hasattr(self.config, key)}
        return {
            "chosen": chosen,
            "reasons": dict(self.reasons),
            "estimated_seconds": round(self.estimated_seconds, 1),
            "budget_s": self.budget_s,
        }

    def text(self) -> str:
        """The reasons as lines ``setting: reason`` (the CLI prints them, the page lists them)."""
        return "\n".join(f"{key}: {why}" for key, why in self.reasons.items())


def profile_data(imageset: ImageSet) -> DataProfile:
    """The typical image side of ``imageset`` (all in-memory images share one; files: a sample's median)."""
    if imageset.image_size is not None:
        side, mixed = max(imageset.image_size), False
    else:
        sides = _sample_sides(imageset)
        side, mixed = (int(statistics.median(sides)) if sides else 32), True
    return DataProfile(
        side=int(side),
        mixed_sizes=mixed,
        channels=imageset.channels,
        classes=imageset.num_classes,
        train_images=len(imageset.train),
        val_images=len(imageset.val),
    )


def _sample_sides(imageset: ImageSet) -> list[int]:
    files = (imageset.train.files or []) + (imageset.val.files or [])
    step = max(1, len(files) // SIZE_SAMPLE)
    sides = []
    for path in files[::step][:SIZE_SAMPLE]:
        try:
            with Image.open(path) as image:  # the header only: no pixels are decoded
                sides.append(max(image.size))
        except (OSError, ValueError):
            continue  # a file the data path will report on its own
    return sides


# The small VGG's reason, and what it adds about pretrained weights for photos (one template each, so that a
# translation is a whole sentence; Phrase keeps its parameters for the page).
_VGG = N_(
    "colour images ({side} px) trained from scratch: the small VGG (BatchNorm, 0.3 M parameters) at "
    "the images' own size beat ResNet-18 and MobileNetV2 from scratch in the benchmark"
)
_VGG_NO_WEIGHTS = N_(
    "colour images ({side} px) trained from scratch: the small VGG (BatchNorm, 0.3 M parameters) at "
    "the images' own size beat ResNet-18 and MobileNetV2 from scratch in the benchmark (no pretrained "
    "weights installed: `python -m cnndash weights import FILE`)"
)
_VGG_WEIGHTS_TOO_LARGE = N_(
    "colour images ({side} px) trained from scratch: the small VGG (BatchNorm, 0.3 M parameters) at "
    "the images' own size beat ResNet-18 and MobileNetV2 from scratch in the benchmark; ResNet-18's "
    "ImageNet weights are installed, but fine-tuning them at {size} px or more (their own stem) does not "
    "fit the budget — give a larger one to use them"
)


def _model_for(profile: DataProfile, pretrained: bool, vgg: str = _VGG) -> tuple[str, Phrase]:
    if pretrained:
        return "resnet18", Phrase(
            N_(
                "colour photos and ResNet-18's ImageNet weights are installed: fine-tuning them beats any "
                "model trained from scratch on a small dataset"
            )
        )
    if profile.channels == 1:
        return "lenet", Phrase(
            N_(
                "grayscale images ({side} px): LeNet learns them in seconds, and with the epochs the budget "
                "buys it matched the small VGG at a fraction of the time in the benchmark (docs/training.md)"
            ),
            side=profile.side,
        )
    extra = {"size": PRETRAINED_SIZES[-1]} if vgg == _VGG_WEIGHTS_TOO_LARGE else {}
    return "vgg", Phrase(vgg, side=profile.side, **extra)


def _sizes_for(model: str, profile: DataProfile) -> list[int]:
    """Candidate sides, best first: the images' own size (never shrunk below it when it fits)."""
    floor = DEFAULT_MIN_SIZE[model]
    if profile.side <= floor:
        return [floor]
    own = [s for s in PHOTO_SIZES if s <= profile.side]
    ceiling = 64 if model in ("lenet", "simplecnn", "vgg") else 128
    sizes = [s for s in own if floor <= s <= ceiling] or [floor]
    if profile.side <= ceiling and profile.side not in sizes:
        sizes.insert(0, profile.side)
    return [max(s, MIN_IMAGE_SIZE[model]) for s in sizes]


def choose_settings(
    data: ImageSet | DataProfile,
    dataset: str = "",
    *,
    budget_s: float = ONE_CLICK_BUDGET_S,
    device: str = "cpu",
    pretrained_available: bool | None = None,
    base: TrainConfig | None = None,
) -> AutoChoice:
    """Model, image size, batch size, epochs and learning rate for ``data`` (a loaded dataset, or its
    :class:`DataProfile`) named ``dataset``, within ``budget_s`` seconds on ``device`` (a type: cpu, cuda,
    mps). ``pretrained_available`` says whether ResNet-18's ImageNet weights may be used (default: whether
    they are installed, :func:`cnndash.pretrained.weights_installed`). ``base`` keeps its other settings
    (seed, augmentation, …). The app's one click and ``train --model auto`` both call this."""
    check_budget(budget_s)
    profile = data if isinstance(data, DataProfile) else profile_data(data)
    if pretrained_available is None:
        pretrained_available = weights_installed("resnet18")
    batch = 16 if profile.train_images < SMALL_DATASET else 32
    why_batch = Phrase(
        N_("{n} training images: batches of 16 give twice the updates per epoch")
        if batch == 16
        else N_("{n} training images: batches of 32"),
        n=profile.train_images,
    )
    photos = profile.channels == 3 and profile.side > 40
    # A pipeline that crops or resizes to a fixed side decides the size (auto_image_size, the run's own rule).
    crop = pipeline_output_size(base.augment) if base is not None else None
    fits = partial(_fit_pretrained, profile, batch, budget_s, device, crop)
    tuned = fits() if photos and pretrained_available else None
    pretrained = tuned is not None
    vgg = _VGG if not photos else _VGG_NO_WEIGHTS if not pretrained_available else _VGG_WEIGHTS_TOO_LARGE
    model, why_model = _model_for(profile, pretrained, vgg)
    if tuned is not None:
        size, epochs, seconds, transfer = tuned
    else:
        size, epochs, seconds = _fit_budget(model, profile, batch, budget_s, device, crop)
        transfer = "all"
    reasons = {
        "model": why_model,
        "image_size": _size_reason(size, profile)
        if crop is None
        else auto_image_size(model, None, base.augment)[1],
        "batch_size": why_batch,
        "epochs": _epochs_reason(epochs, budget_s, seconds, device),
    }
    lr, why_lr = _lr_for(model, pretrained, photos)
    reasons["lr"] = why_lr
    # With a crop the size stays automatic (None): the run resolves it from the pipeline, as estimated here.
    settings = dict(
        model=model,
        image_size=None if crop else size,
        batch_size=batch,
        epochs=epochs,
        lr=lr,
        optimizer="adam",
    )
    settings |= dict(schedule="onecycle", pretrained=pretrained, transfer=transfer)
    if transfer != "all":
        reasons["transfer"] = _transfer_reason(transfer)
    dataset = dataset or (base.dataset if base is not None else "")
    config = replace(base or TrainConfig(dataset=dataset), dataset=dataset, **settings)
    return AutoChoice(config=config, reasons=reasons, estimated_seconds=seconds, budget_s=float(budget_s))


def _transfer_reason(transfer: str) -> Phrase:
    if transfer == "lower_lr":
        return Phrase(
            N_(
                "fine-tune everything with the backbone at a tenth of the learning rate: the ImageNet features "
                "adapt without being overwritten in the first steps ('freeze' trains the head only: faster, "
                "but worse once the photos differ from ImageNet's)"
            )
        )
    return Phrase(
        N_(
            "train the new head only (the backbone frozen): fine-tuning everything does not fit the budget "
            "at this size, and the head alone costs about a third; with a larger budget the backbone is "
            "fine-tuned too, at a tenth of the learning rate, which does better on photos unlike ImageNet's"
        )
    )


def _fit_budget(
    model: str, profile: DataProfile, batch: int, budget_s: float, device: str, crop: int | None = None
) -> tuple[int, int, float]:
    """The largest candidate size whose run of at least MIN_AUTO_EPOCHS fits the budget, and the epochs that
    fit at that size (the smallest size when none does); a pipeline's ``crop`` is the only candidate."""
    sizes = _sizes_for(model, profile) if crop is None else [max(crop, MIN_IMAGE_SIZE[model])]
    for size in sizes:
        one = estimate_seconds(model, size, profile, epochs=1, batch_size=batch, device=device)
        fixed = estimate_seconds(model, size, profile, epochs=0, batch_size=batch, device=device)
        epochs = int((budget_s - fixed) // max(one - fixed, 1e-9))
        if epochs >= MIN_AUTO_EPOCHS or size == sizes[-1]:
            epochs = min(max(epochs, MIN_AUTO_EPOCHS), MAX_AUTO_EPOCHS)
            return (
                size,
                epochs,
                estimate_seconds(model, size, profile, epochs=epochs, batch_size=batch, device=device),
            )
    raise AssertionError("unreachable: the last size always returns")


def _fit_pretrained(
    profile: DataProfile, batch: int, budget_s: float, device: str, crop: int | None = None
) -> tuple[int, int, float, str] | None:
    """ResNet-18 fine-tuned (backbone at a lower LR), else head-only, at the largest pretrained size whose
    MIN_AUTO_EPOCHS fit the budget; None when neither fits at any size. A pipeline's ``crop`` is the only
    size, and below the ImageNet stem's sizes there is none (the small-input stem drops the first layer)."""
    sizes = [s for s in PRETRAINED_SIZES if s <= max(profile.side, PRETRAINED_SIZES[-1])]
    if crop is not None:
        sizes = [crop] if crop >= PRETRAINED_SIZES[-1] else []
    for transfer in ("lower_lr", "freeze"):
        for size in sizes:
            cost = partial(estimate_seconds, "resnet18", size, profile, batch_size=batch, device=device,
                           transfer=transfer)  # fmt: skip
            one, fixed = cost(epochs=1), cost(epochs=0)
            epochs = min(int((budget_s - fixed) // max(one - fixed, 1e-9)), MAX_AUTO_EPOCHS)
            if epochs >= MIN_AUTO_EPOCHS:
                return size, epochs, cost(epochs=epochs), transfer
    return None


def _epochs_reason(epochs: int, budget_s: float, seconds: float, device: str) -> Phrase:
    return Phrase(
        N_(
            "{epochs} epochs fit the {budget} s budget (about {seconds} s estimated on the {device}); capped at {cap}"
        )
        if epochs == MAX_AUTO_EPOCHS
        else N_("{epochs} epochs fit the {budget} s budget (about {seconds} s estimated on the {device})"),
        epochs=epochs,
        budget=f"{budget_s:g}",
        seconds=f"{seconds:.0f}",
        device=device.upper(),
        cap=MAX_AUTO_EPOCHS,
    )


def _size_reason(size: int, profile: DataProfile) -> Phrase:
    own = (
        Phrase(N_("about {side} px (median of mixed sizes)"), side=profile.side)
        if profile.mixed_sizes
        else Phrase(N_("{side} px"), side=profile.side)
    )
    if size == profile.side:
        return Phrase(N_("the images are {own}: trained at their own size"), own=own)
    if size > profile.side:
        return Phrase(
            N_("the images are {own}: upsampled to {size} px, the smallest size this model is built for"),
            own=own,
            size=size,
        )
    return Phrase(
        N_("the images are {own}: {size} px is the largest size that fits the budget"), own=own, size=size
    )


def _lr_for(model: str, pretrained: bool, photos: bool) -> tuple[float, Phrase]:
    if pretrained:
        return 1e-3, Phrase(
            N_("1e-3 for the new head (the backbone gets a tenth): pretrained weights need a gentle start")
        )
    if model in ("resnet18", "mobilenet_v2"):
        return 1e-3, Phrase(
            N_(
                "1e-3: at 3e-3 ResNet-18 from scratch stayed at chance for its first epochs (docs/training.md)"
            )
        )
    if photos:  # the small VGG on colour photos of more than 40 px
        return 1e-3, Phrase(
            N_(
                "1e-3, one-cycle: on colour photos the small VGG did better at 1e-3 than at 3e-3 in the "
                "benchmark (texture photos, three seeds: 0.68 against 0.57 on average)"
            )
        )
    return 3e-3, Phrase(N_("3e-3, one-cycle: Adam's reliable peak for the small models in the benchmark"))


def small_input(size: int) -> bool:
    """True when ResNet/MobileNet use their small-input stem at ``size`` (pretrained stems need more)."""
    return size <= SMALL_INPUT_MAX


AUTO_FIELDS = (
    "model",
    "image_size",
    "batch_size",
    "epochs",
    "lr",
    "optimizer",
    "schedule",
    "pretrained",
    "transfer",
)


def auto_config(
    config: TrainConfig, *, explicit: set[str] = frozenset(), budget_s: float = ONE_CLICK_BUDGET_S
) -> AutoChoice:
    """:func:`choose_settings` for ``config``'s dataset and device, keeping the settings named in ``explicit``
    (what a person set by hand: their value wins and the reason says so)."""
    imageset = load_dataset(config.dataset, val_fraction=config.val_fraction, seed=config.seed)
    device = resolve_device(config.device).type
    choice = choose_settings(imageset, config.dataset, budget_s=budget_s, device=device, base=config)
    kept = {key: getattr(config, key) for key in AUTO_FIELDS if key in explicit and key != "model"}
    reasons = dict(choice.reasons)
    for key in kept:
        reasons[key] = Phrase(N_("set by hand"))
    return replace(choice, config=replace(choice.config, **kept), reasons=reasons)
