"""The checks of one op's arguments: :class:`Step` (a step being checked, which words its errors), the
number, range and size rules, and one validator per op that needs more (:data:`VALIDATORS`).

Every failure is an :class:`~cnndash.augment.ops.AugmentError` naming the step and the argument. Ranges
(``[min, max]`` pairs, optionally a single number) all go through :func:`_check_range`. The pipeline as a
whole (an op's shape and signature, the arguments ops share, the order of steps) is checked in
:mod:`cnndash.augment.checks`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cnndash.augment.ops import AugmentError
from cnndash.text import N_, Phrase

UINT8_MAX = 255  # RandomSolarize's threshold is a uint8 pixel value
MAX_POSTERIZE_BITS = 8  # bits per channel of a uint8 image
HUE_LIMIT = 0.5  # ColorJitter's hue is a fraction of the colour wheel: ±0.5 covers it
# torchvision's defaults, used when the spec leaves these arguments out.
DEFAULT_MAGNITUDE_BINS = 31
DEFAULT_MAGNITUDE = 9
DEFAULT_NUM_OPS = 2
DEFAULT_DISTORTION = 0.5


@dataclass(frozen=True)
class Step:
    """One step being checked: where it is, what it is, its arguments; builds the errors that name it."""

    index: int  # 0-based position in the spec
    op: str
    kwargs: dict[str, Any]

    def fail(self, argument: str | None, problem: str, /, **params: Any) -> AugmentError:
        """The error of this step's ``argument`` (None: the step as a whole): ``problem`` is a marked
        template (``N_``) filled with ``params``, so that a page says all of it in the reader's language."""
        where = (  # Phrases: the page names the step and says the problem in the reader's language
            Phrase(
                N_("Step {n} ({op}), argument '{argument}'"), n=self.index + 1, op=self.op, argument=argument
            )
            if argument
            else Phrase(N_("Step {n} ({op})"), n=self.index + 1, op=self.op)
        )
        return AugmentError(
            "{where}: {problem}",
            step=self.index,
            argument=argument,
            where=where,
            problem=Phrase(problem, **params),
        )

    def require(self, argument: str, ok: bool, problem: str, /, **params: Any) -> None:
        """:meth:`fail` unless ``ok``."""
        if not ok:
            raise self.fail(argument, problem, **params)


def is_number(value: Any) -> bool:
    """A finite real number (a bool is not one)."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any, low: int, high: float = math.inf) -> bool:
    return isinstance(value, int) and low <= value <= high


def _check_numbers(step: Step, arg: str, value: Any, length: int | None = None) -> list[float]:
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if not values or not all(is_number(v) for v in values):
        raise step.fail(arg, N_("expected numbers, got {value}."), value=repr(value))
    if length is not None and len(values) != length:
        raise step.fail(
            arg, N_("expected {length} numbers, got {count} ({value})."), length=length, count=len(values),
            value=repr(value),
        )  # fmt: skip
    return [float(v) for v in values]


def _check_range(
    step: Step,
    arg: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    single_ok: bool = False,
) -> None:
    """The one range rule: ``value`` is a [min, max] pair (or a single number when ``single_ok``) with
    min ≤ max, inside [low, high] (``low`` itself excluded when ``low_open``)."""
    if single_ok and is_number(value):
        values = [float(value)]
    else:
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            expected = (
                N_("expected a number or a [min, max] pair, got {value}.")
                if single_ok
                else N_("expected a [min, max] pair, got {value}.")
            )
            raise step.fail(arg, expected, value=repr(value))
        values = _check_numbers(step, arg, value, 2)
        if values[0] > values[1]:
            raise step.fail(
                arg, N_("min {low:g} is larger than max {high:g}; swap them."), low=values[0], high=values[1]
            )
    for v in values:
        if low is not None and (v < low or (low_open and v == low)):
            bound = (
                N_("{value:g} must be greater than {low:g}.")
                if low_open
                else N_("{value:g} must be at least {low:g}.")
            )
            raise step.fail(arg, bound, value=v, low=low)
        if high is not None and v > high:
            raise step.fail(arg, N_("{value:g} must be at most {high:g}."), value=v, high=high)


def check_size(step: Step, arg: str, value: Any) -> None:
    """``value`` is a size: a positive integer or ``[height, width]``."""
    values = value if isinstance(value, (list, tuple)) else [value]
    if not 1 <= len(values) <= 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) and v >= 1 for v in values
    ):
        raise step.fail(
            arg, N_("expected a positive integer or [height, width], got {value}."), value=repr(value)
        )


# --------------------------------------------------------------------------------------------------
# One validator per op that needs more than the shared checks.


def _scale_and_ratio(step: Step) -> None:
    """RandomResizedCrop / RandomErasing: area fraction in (0, 1], aspect ratio above 0."""
    if "scale" in step.kwargs:
        _check_range(step, "scale", step.kwargs["scale"], low=0.0, high=1.0, low_open=True)
    if "ratio" in step.kwargs:
        _check_range(step, "ratio", step.kwargs["ratio"], low=0.0, low_open=True)


def _random_erasing(step: Step) -> None:
    _scale_and_ratio(step)
    value = step.kwargs.get("value", 0.0)
    ok = is_number(value) or value == "random" or isinstance(value, list)
    step.require(
        "value", ok, N_("use a number, a list per channel, or 'random', got {value}."), value=repr(value)
    )


def _degrees(step: Step) -> None:
    """RandomRotation / RandomAffine: a [min, max] angle range, or one non-negative angle (±angle)."""
    degrees = step.kwargs.get("degrees")
    if is_number(degrees):
        step.require(
            "degrees",
            degrees >= 0,
            N_("a single angle must be non-negative (means ±{angle:g})."),
            angle=-degrees,
        )
    else:
        _check_range(step, "degrees", degrees)


def _random_affine(step: Step) -> None:
    _degrees(step)
    kwargs = step.kwargs
    if kwargs.get("translate") is not None:
        values = _check_numbers(step, "translate", kwargs["translate"], 2)
        ok = all(0.0 <= v <= 1.0 for v in values)
        step.require("translate", ok, N_("fractions of the size must be between 0 and 1."))
    if kwargs.get("scale") is not None:
        _check_range(step, "scale", kwargs["scale"], low=0.0, low_open=True)
    shear = kwargs.get("shear")
    if shear is None:
        return
    if is_number(shear):
        step.require("shear", shear >= 0, N_("a single shear angle must be non-negative."))
        return
    values = _check_numbers(step, "shear", shear)
    ordered = (
        len(values) in (2, 4) and values[0] <= values[1] and (len(values) == 2 or values[2] <= values[3])
    )
    step.require("shear", ordered, N_("use [min, max] or [xmin, xmax, ymin, ymax] with min ≤ max."))


def _color_jitter(step: Step) -> None:
    for name in ("brightness", "contrast", "saturation"):
        if step.kwargs.get(name) is not None:
            _check_range(step, name, step.kwargs[name], low=0.0, single_ok=True)
    hue = step.kwargs.get("hue")
    if hue is None:
        return
    if is_number(hue):  # one number h means [-h, h]
        _check_range(step, "hue", hue, low=0.0, high=HUE_LIMIT, single_ok=True)
    else:
        _check_range(step, "hue", hue, low=-HUE_LIMIT, high=HUE_LIMIT)


def _gaussian_blur(step: Step) -> None:
    ks = step.kwargs.get("kernel_size")
    values = ks if isinstance(ks, list) else [ks]
    odd = all(_is_int(v, 1) and not isinstance(v, bool) and v % 2 == 1 for v in values)
    step.require(
        "kernel_size",
        odd and len(values) in (1, 2),
        N_("must be a positive odd integer (e.g. 3, 5), got {value}."),
        value=repr(ks),
    )
    if "sigma" in step.kwargs:
        _check_range(step, "sigma", step.kwargs["sigma"], low=0.0, low_open=True, single_ok=True)


def _random_perspective(step: Step) -> None:
    ds = step.kwargs.get("distortion_scale", DEFAULT_DISTORTION)
    step.require(
        "distortion_scale",
        is_number(ds) and 0.0 <= ds <= 1.0,
        N_("must be between 0 and 1, got {value}."),
        value=repr(ds),
    )


def _magnitude_bins(step: Step) -> int:
    bins = step.kwargs.get("num_magnitude_bins", DEFAULT_MAGNITUDE_BINS)
    step.require(
        "num_magnitude_bins", _is_int(bins, 2), N_("must be an integer ≥ 2, got {value}."), value=repr(bins)
    )
    return bins


def _rand_augment(step: Step) -> None:
    bins = _magnitude_bins(step)
    magnitude = step.kwargs.get("magnitude", DEFAULT_MAGNITUDE)
    num_ops = step.kwargs.get("num_ops", DEFAULT_NUM_OPS)
    ok = _is_int(magnitude, 0, bins - 1)
    step.require(
        "magnitude",
        ok,
        N_("must be an integer from 0 to {high}, got {value}."),
        high=bins - 1,
        value=repr(magnitude),
    )
    step.require(
        "num_ops",
        _is_int(num_ops, 0),
        N_("must be a non-negative integer, got {value}."),
        value=repr(num_ops),
    )


def _normalize(step: Step) -> None:
    mean = _check_numbers(step, "mean", step.kwargs["mean"])
    std = _check_numbers(step, "std", step.kwargs["std"])
    ok = len(mean) == len(std)
    step.require(
        "std",
        ok,
        N_("has {count} values but mean has {means}; give one per channel."),
        count=len(std),
        means=len(mean),
    )
    step.require(
        "std",
        all(s > 0 for s in std),
        N_("every std must be positive, got {value}."),
        value=repr(step.kwargs["std"]),
    )


def _posterize(step: Step) -> None:
    bits = step.kwargs.get("bits")
    ok = _is_int(bits, 1, MAX_POSTERIZE_BITS)
    step.require(
        "bits",
        ok,
        N_("must be an integer from 1 to {high}, got {value}."),
        high=MAX_POSTERIZE_BITS,
        value=repr(bits),
    )


def _solarize(step: Step) -> None:
    threshold = step.kwargs.get("threshold")
    ok = is_number(threshold) and 0 <= threshold <= UINT8_MAX
    step.require(
        "threshold", ok, N_("must be between 0 and {high} (uint8 images), got {value}."), high=UINT8_MAX,
        value=repr(threshold),
    )  # fmt: skip


def _sharpness(step: Step) -> None:
    factor = step.kwargs.get("sharpness_factor")
    ok = is_number(factor) and factor >= 0
    step.require(
        "sharpness_factor", ok, N_("must be a non-negative number, got {value}."), value=repr(factor)
    )


def _grayscale(step: Step) -> None:
    ok = step.kwargs.get("num_output_channels", 1) in (1, 3)
    step.require("num_output_channels", ok, N_("must be 1 or 3."))


def _padding(step: Step) -> None:
    """RandomCrop / Pad: one non-negative int for every border, 2 (left/right, top/bottom) or 4."""
    padding = step.kwargs.get("padding")
    if padding is None:
        return
    values = padding if isinstance(padding, list) else [padding]
    ok = len(values) in (1, 2, 4) and all(_is_int(v, 0) and not isinstance(v, bool) for v in values)
    step.require(
        "padding", ok, N_("use a non-negative integer or a list of 2 or 4, got {value}."), value=repr(padding)
    )


VALIDATORS: dict[str, Callable[[Step], None]] = {
    "RandomResizedCrop": _scale_and_ratio,
    "RandomErasing": _random_erasing,
    "RandomRotation": _degrees,
    "RandomAffine": _random_affine,
    "ColorJitter": _color_jitter,
    "GaussianBlur": _gaussian_blur,
    "RandomPerspective": _random_perspective,
    "RandAugment": _rand_augment,
    "TrivialAugmentWide": _magnitude_bins,
    "Normalize": _normalize,
    "RandomPosterize": _posterize,
    "RandomSolarize": _solarize,
    "RandomAdjustSharpness": _sharpness,
    "Grayscale": _grayscale,
    "RandomCrop": _padding,
    "Pad": _padding,
}
