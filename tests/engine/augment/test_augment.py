"""cnndash.augment: spec validation, spec -> Compose -> code round trip, preview, saved pipelines."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import v2

from cnndash.augment import (
    OPS,
    VALIDATORS,
    AugmentError,
    augment_samples,
    build_pipeline,
    default_step,
    delete_pipeline,
    list_pipelines,
    load_pipeline,
    normalize_step,
    pipeline_code,
    save_pipeline,
    steps_to_add,
    to_image_tensor,
)

REQUIRED_OPS = (
    "Resize",
    "CenterCrop",
    "RandomResizedCrop",
    "RandomCrop",
    "RandomHorizontalFlip",
    "RandomVerticalFlip",
    "RandomRotation",
    "RandomAffine",
    "ColorJitter",
    "RandomGrayscale",
    "GaussianBlur",
    "RandomPerspective",
    "RandomErasing",
    "RandAugment",
    "TrivialAugmentWide",
    "AutoAugment",
    "Normalize",
)


def photo(size=(40, 32)) -> Image.Image:
    """A small RGB image with structure (a gradient and a bright square), so transforms change it."""
    w, h = size
    x = torch.linspace(0, 255, w).round().to(torch.uint8)
    y = torch.linspace(0, 255, h).round().to(torch.uint8)
    pixels = torch.stack(
        [x.expand(h, w), y[:, None].expand(h, w), (x[None, :] // 2 + y[:, None] // 2)], dim=-1
    )
    pixels[h // 4 : h // 2, w // 4 : w // 2] = 255
    return Image.fromarray(pixels.numpy(), "RGB")


def outputs(transform, image, seed: int, n: int = 3) -> list[torch.Tensor]:
    torch.manual_seed(seed)
    return [transform(image) for _ in range(n)]


def test_catalogue_covers_the_issue_and_every_default_builds():
    assert set(REQUIRED_OPS) <= set(OPS)
    for op in OPS:
        if op == "Normalize":
            spec = [default_step("ToDtype"), default_step("Normalize")]
        else:
            spec = [default_step(op)]
        compose = build_pipeline(spec)
        assert isinstance(compose, v2.Compose)
        assert type(compose.transforms[-1]).__name__ == op


def spec_cases() -> list[list[dict]]:
    everything = [
        default_step(op)
        for op in OPS
        if op not in ("ToDtype", "Normalize", "ToImage", "RandomErasing", "Grayscale", "Resize", "CenterCrop")
    ]
    for step in everything:
        if "size" in step:
            step["size"] = [24, 24]
    return [
        everything,
        [
            {"op": "RandomResizedCrop", "size": [24, 20], "scale": [0.3, 1.0], "interpolation": "bicubic"},
            {"op": "RandomCrop", "size": 20, "padding": [2, 3], "padding_mode": "reflect"},
            {"op": "AutoAugment", "policy": "cifar10"},
            {"op": "ColorJitter", "brightness": [0.5, 1.5], "hue": [-0.2, 0.1]},
            {"op": "ToDtype", "dtype": "float32", "scale": True},
            {"op": "RandomErasing", "p": 1.0, "scale": [0.1, 0.2], "value": 0.5},
            {"op": "Normalize", "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]},
        ],
        [{"op": "Resize", "size": 30}, {"op": "CenterCrop", "size": [28, 28]}, {"op": "Grayscale"}],
    ]


@pytest.mark.parametrize("case", range(3))
def test_spec_compose_code_round_trip_gives_identical_tensors(case):
    spec = spec_cases()[case]
    json.dumps(spec)  # specs are plain JSON
    compose = build_pipeline(spec)
    namespace: dict = {}
    exec(compile(pipeline_code(spec), "<exported>", "exec"), namespace)
    exported = namespace["transform"]
    image = to_image_tensor(photo())
    ours = outputs(compose, image, seed=7)
    theirs = outputs(exported, image, seed=7)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype and torch.equal(a, b)
    # and the pipeline is random: another seed gives something else
    other = outputs(compose, image, seed=8)
    assert any(not torch.equal(a, b) for a, b in zip(ours, other, strict=True)) or case == 2


def test_code_is_standalone_and_runs_on_pil_images():
    code = pipeline_code([{"op": "RandomHorizontalFlip", "p": 1.0}])
    imports = [line for line in code.splitlines() if line.startswith(("import ", "from "))]
    # NumPy and Pillow for the decoding step (as training decodes a PIL image), nothing of cnndash.
    assert imports == [
        "import numpy as np",
        "import torch",
        "from PIL import Image",
        "from torchvision.transforms import v2",
    ]
    namespace: dict = {}
    exec(code, namespace)
    flipped = namespace["transform"](photo())
    assert np.array_equal(np.asarray(flipped), np.asarray(photo().transpose(Image.Transpose.FLIP_LEFT_RIGHT)))


def _every_mode() -> dict[str, Image.Image]:
    """One small image per PIL mode a dataset may hold, transparent pixels included."""
    rgba = np.zeros((6, 8, 4), dtype=np.uint8)  # built when a test runs, not at collection
    rgba[2:4, 2:6] = (200, 40, 10, 255)  # an opaque square on transparent black
    palette = Image.fromarray(rgba[..., :3]).convert("P")
    palette.info["transparency"] = palette.getpixel((0, 0))  # the black background is transparent
    gray16 = Image.fromarray(np.arange(48, dtype=np.uint16).reshape(6, 8) * 1000)  # mode I;16
    return {
        "RGBA": Image.fromarray(rgba, "RGBA"),
        "LA": Image.fromarray(rgba[..., [0, 3]], "LA"),
        "P+tRNS": palette,
        "CMYK": photo((8, 6)).convert("CMYK"),
        "I;16": gray16,
        "1": photo((8, 6)).convert("1"),
        "L": photo((8, 6)).convert("L"),
        "RGB": photo((8, 6)),
    }


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P+tRNS", "CMYK", "I;16", "1", "L", "RGB"])
def test_exported_code_decodes_every_mode_as_training_does(mode):
    from cnndash.preprocess import convert_mode, lone_image_mode

    image = _every_mode()[mode]
    namespace: dict = {}
    exec(pipeline_code([{"op": "RandomHorizontalFlip", "p": 0.5}]), namespace)
    exported = namespace["as_training_decodes"](image)
    expected = convert_mode(image, lone_image_mode(image.mode))
    assert exported.mode == expected.mode and exported.tobytes() == expected.tobytes()
    if mode in ("RGBA", "P+tRNS"):
        assert exported.getpixel((0, 0)) == (255, 255, 255)  # transparent pixels on white, as in training
    # The whole transform on the raw image equals the preview's pipeline on the image as training decodes it.
    spec = [
        {"op": "RandomHorizontalFlip", "p": 0.5},
        {"op": "RandomVerticalFlip", "p": 0.5},
    ]  # exact on PIL too
    exec(pipeline_code(spec), namespace)
    ours = outputs(build_pipeline(spec), to_image_tensor(image), seed=5, n=3)
    theirs = [v2.functional.to_image(out) for out in outputs(namespace["transform"], image, seed=5, n=3)]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))


def test_preview_samples_equal_the_pipeline_after_manual_seed():
    spec = [{"op": "RandomRotation", "degrees": [-40, 40]}, {"op": "ColorJitter", "brightness": 0.5}]
    image = photo()
    samples = augment_samples(spec, image, n=4, seed=3)
    assert len(samples) == 4 and all(s.size == image.size and s.mode == "RGB" for s in samples)
    expected = outputs(build_pipeline(spec), to_image_tensor(image), seed=3, n=4)
    for sample, tensor in zip(samples, expected, strict=True):
        assert torch.equal(to_image_tensor(sample), tensor)
    assert augment_samples(spec, image, n=4, seed=3)[2].tobytes() == samples[2].tobytes()
    assert augment_samples(spec, image, n=4, seed=4)[0].tobytes() != samples[0].tobytes()


def test_preview_restores_the_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    augment_samples([default_step("RandomRotation")], photo(), n=2, seed=0)
    assert torch.equal(torch.rand(3), expected)


def test_preview_undoes_normalize_for_display_and_keeps_grayscale():
    spec = [default_step("ToDtype"), normalize_step([0.5], [0.25])]
    gray = photo().convert("L")
    (sample,) = augment_samples(spec, gray, n=1)
    assert sample.mode == "L"
    assert np.array_equal(np.asarray(sample), np.asarray(gray))


@pytest.mark.parametrize(
    ("spec", "step", "argument", "text"),
    [
        ([{"op": "Posterise"}], 0, "op", "unknown operation 'Posterise'"),
        (
            [default_step("RandomRotation"), {"op": "RandomRotation", "degree": 10}],
            1,
            "degree",
            "unknown argument",
        ),
        (
            [{"op": "RandomResizedCrop", "size": 32, "scale": [0.9, 0.2]}],
            0,
            "scale",
            "min 0.9 is larger than max 0.2",
        ),
        ([{"op": "RandomResizedCrop", "size": 32, "scale": [0.0, 1.0]}], 0, "scale", "greater than 0"),
        ([{"op": "RandomHorizontalFlip", "p": 1.5}], 0, "p", "between 0 and 1"),
        ([{"op": "RandomErasing", "p": -0.1}], 0, "p", "between 0 and 1"),
        ([{"op": "RandomErasing", "ratio": [3.0, 0.3]}], 0, "ratio", "larger than max"),
        ([{"op": "RandomRotation", "degrees": [30, -30]}], 0, "degrees", "swap them"),
        ([{"op": "RandomRotation", "degrees": -10}], 0, "degrees", "non-negative"),
        ([{"op": "RandomRotation"}], 0, "degrees", "is required"),
        ([{"op": "RandomAffine", "degrees": 0, "translate": [0.5, 1.5]}], 0, "translate", "between 0 and 1"),
        ([{"op": "ColorJitter", "hue": 0.7}], 0, "hue", "at most 0.5"),
        ([{"op": "ColorJitter", "brightness": -1}], 0, "brightness", "at least 0"),
        ([{"op": "GaussianBlur", "kernel_size": 4}], 0, "kernel_size", "odd"),
        ([{"op": "GaussianBlur", "kernel_size": 3, "sigma": [2.0, 0.5]}], 0, "sigma", "larger than max"),
        ([{"op": "RandomPerspective", "distortion_scale": 2}], 0, "distortion_scale", "between 0 and 1"),
        ([{"op": "RandAugment", "magnitude": 31}], 0, "magnitude", "0 to 30"),
        ([{"op": "AutoAugment", "policy": "mnist"}], 0, "policy", "imagenet"),
        ([{"op": "Resize", "size": 0}], 0, "size", "positive integer"),
        ([{"op": "Resize", "size": [32, 32], "interpolation": "lanczos"}], 0, "interpolation", "bilinear"),
        ([{"op": "Normalize", "mean": [0.5], "std": [0.5]}], 0, None, "add a ToDtype step"),
        (
            [default_step("ToDtype"), {"op": "Normalize", "mean": [0.5, 0.5], "std": [0.5]}],
            1,
            "std",
            "one per channel",
        ),
        ([default_step("ToDtype"), {"op": "Normalize", "mean": [0.5], "std": [0.0]}], 1, "std", "positive"),
        ([{"op": "ToDtype", "dtype": "float32"}], 0, "scale", "scale=True"),
        ([{"op": "ToDtype", "dtype": "complex64", "scale": True}], 0, "dtype", "float32"),
        ([default_step("ToDtype"), default_step("RandAugment")], 1, None, "before ToDtype"),
        ([{"op": "RandomCrop", "size": 8, "padding": -1}], 0, "padding", "non-negative"),
    ],
)
def test_invalid_specs_name_the_step_and_argument(spec, step, argument, text):
    with pytest.raises(AugmentError) as info:
        build_pipeline(spec)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.step == step and error.argument == argument
    assert f"Step {step + 1}" in str(error) and text in str(error)
    if argument and argument != "op":
        assert f"'{argument}'" in str(error)


# One case per validator in the table (and per rule inside the larger ones), on top of the cases above.
VALIDATOR_CASES = [
    ("RandomResizedCrop", {"size": 8, "ratio": [0.0, 2.0]}, "ratio", "greater than 0"),
    ("RandomErasing", {"scale": [0.2, 1.5]}, "scale", "at most 1"),
    ("RandomErasing", {"value": "noise"}, "value", "'random'"),
    ("RandomRotation", {"degrees": [10]}, "degrees", "[min, max] pair"),
    ("RandomAffine", {"degrees": 0, "scale": [0.0, 1.0]}, "scale", "greater than 0"),
    ("RandomAffine", {"degrees": 0, "shear": -5}, "shear", "non-negative"),
    ("RandomAffine", {"degrees": 0, "shear": [0, 10, 10, 0]}, "shear", "min ≤ max"),
    ("RandomAffine", {"degrees": 0, "translate": [0.1]}, "translate", "expected 2 numbers"),
    ("ColorJitter", {"hue": [-0.6, 0.2]}, "hue", "at least -0.5"),
    ("ColorJitter", {"saturation": [1.5, 0.5]}, "saturation", "swap them"),
    ("GaussianBlur", {"kernel_size": 3, "sigma": 0}, "sigma", "greater than 0"),
    ("GaussianBlur", {"kernel_size": [3, 5, 7]}, "kernel_size", "odd"),
    ("RandAugment", {"num_ops": -1}, "num_ops", "non-negative integer"),
    ("RandAugment", {"num_magnitude_bins": 1}, "num_magnitude_bins", "≥ 2"),
    ("TrivialAugmentWide", {"num_magnitude_bins": 1.5}, "num_magnitude_bins", "≥ 2"),
    ("Normalize", {"mean": ["a"], "std": [0.5]}, "mean", "expected numbers"),
    ("RandomPosterize", {"bits": 9}, "bits", "from 1 to 8"),
    ("RandomSolarize", {"threshold": 256}, "threshold", "between 0 and 255"),
    ("RandomAdjustSharpness", {"sharpness_factor": -1}, "sharpness_factor", "non-negative"),
    ("Grayscale", {"num_output_channels": 2}, "num_output_channels", "1 or 3"),
    ("Pad", {"padding": [1, 2, 3]}, "padding", "list of 2 or 4"),
    ("RandomCrop", {"size": 8, "padding": [1, True]}, "padding", "non-negative integer"),
    ("RandomPerspective", {"distortion_scale": "big"}, "distortion_scale", "between 0 and 1"),
]


def test_every_op_validator_is_in_the_catalogue_and_tested():
    assert set(VALIDATORS) <= set(OPS)
    assert set(VALIDATORS) <= {op for op, *_ in VALIDATOR_CASES}


@pytest.mark.parametrize(("op", "kwargs", "argument", "text"), VALIDATOR_CASES)
def test_op_validators_name_the_argument(op, kwargs, argument, text):
    step = {**default_step(op), **kwargs}
    spec = [default_step("ToDtype"), step] if op in ("Normalize", "RandomErasing") else [step]
    with pytest.raises(AugmentError) as info:
        build_pipeline(spec)
    assert info.value.step == len(spec) - 1 and info.value.argument == argument
    assert f"argument '{argument}'" in str(info.value) and text in str(info.value)
    build_pipeline([default_step("ToDtype"), default_step(op)] if len(spec) == 2 else [default_step(op)])


def test_spec_must_be_a_list_of_step_dicts():
    with pytest.raises(AugmentError, match="list of steps"):
        build_pipeline({"op": "Resize"})
    with pytest.raises(AugmentError, match="Step 1 has no 'op'"):
        build_pipeline([{"size": 3}])


def test_crop_larger_than_the_image_is_a_clear_error():
    for op in ("CenterCrop", "RandomCrop"):
        with pytest.raises(AugmentError, match=rf"Step 2 \({op}\).*larger than") as info:
            augment_samples([default_step("RandomHorizontalFlip"), {"op": op, "size": 64}], photo(), n=1)
        assert info.value.step == 1


def test_normalize_must_match_the_channels_of_the_image():
    spec = [default_step("ToDtype"), default_step("Normalize")]  # three ImageNet means
    with pytest.raises(
        AugmentError, match=r"Step 2 \(Normalize\), argument 'mean': has 3 values but the image has 1"
    ):
        augment_samples(spec, photo().convert("L"), n=1)
    assert len(augment_samples(spec, photo(), n=1)) == 1


def test_pipelines_save_load_list_delete(tmp_path):
    spec = [default_step("RandomRotation"), default_step("ColorJitter")]
    assert list_pipelines(data_dir=tmp_path) == []
    path = save_pipeline("rot-jitter", spec, data_dir=tmp_path)
    assert path == tmp_path / "pipelines" / "rot-jitter.json"
    assert json.loads(path.read_text()) == spec
    save_pipeline("a-first", [], data_dir=tmp_path)
    assert list_pipelines(data_dir=tmp_path) == ["a-first", "rot-jitter"]
    assert load_pipeline("rot-jitter", data_dir=tmp_path) == spec
    assert load_pipeline("a-first", data_dir=tmp_path) == []
    delete_pipeline("a-first", data_dir=tmp_path)
    assert list_pipelines(data_dir=tmp_path) == ["rot-jitter"]
    with pytest.raises(AugmentError, match=r"No saved pipeline named 'missing'.*rot-jitter"):
        load_pipeline("missing", data_dir=tmp_path)
    with pytest.raises(AugmentError, match="not allowed"):
        save_pipeline("../escape", spec, data_dir=tmp_path)
    with pytest.raises(AugmentError, match="Step 1"):
        save_pipeline("bad", [{"op": "RandomHorizontalFlip", "p": 2}], data_dir=tmp_path)
    assert not (tmp_path / "pipelines" / "bad.json").exists()


def test_pipelines_default_to_the_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("CNNDASH_DATA_DIR", str(tmp_path / "d"))
    save_pipeline("flip", [default_step("RandomHorizontalFlip")])
    assert (tmp_path / "d" / "pipelines" / "flip.json").is_file()
    assert list_pipelines() == ["flip"]


def test_steps_to_add_put_todtype_before_normalize_once():
    flip = [default_step("RandomHorizontalFlip")]
    assert steps_to_add("ColorJitter", flip) == [default_step("ColorJitter")]
    added = steps_to_add("Normalize", flip, ([0.5], [0.25]))
    assert [s["op"] for s in added] == ["ToDtype", "Normalize"]
    assert added[1] == normalize_step([0.5], [0.25])
    build_pipeline(flip + added)  # a valid pipeline
    again = steps_to_add("Normalize", flip + added)
    assert again == [default_step("Normalize")]  # ToDtype already there; no stats: the catalogue's
    with pytest.raises(AugmentError, match="Unknown operation"):
        steps_to_add("Blur", flip)
