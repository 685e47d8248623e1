"""Export: every built-in model round-trips with the app's answers (TorchScript, ONNX, predict.py).

Parity is the feature, so it is tested against the app's own path (``predict.predict_images``) on the
run's validation images and on fresh files of other sizes and modes, for every model in gray and RGB.
The bundle's preprocessing (``cnndash/export/template/predict.py``) is checked bit-for-bit against
``cnndash.preprocess`` (which uses torchvision's resize) on random sizes.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from cnndash import preprocess, tables
from cnndash.cli import main as cli_main
from cnndash.data import IMAGE_EXTENSIONS
from cnndash.data.builtin import generate_shapes
from cnndash.evaluate import predict, predict_files
from cnndash.export import bundle as export
from cnndash.models import MODEL_NAMES
from cnndash.runs import RunError, load_run
from cnndash.training.loops import TrainConfig, train

TEMPLATE = export.TEMPLATE_DIR / "predict.py"
TOLERANCE = 1e-4  # the parity the issue asks for, in probability
TIE = 1e-5  # a top-2 gap below this may flip top-1 within float rounding; such rows are not compared


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle_predict():
    return _load_module(TEMPLATE, "bundle_predict_template")


# --------------------------------------------------------------------------------------------------
# The recipe: predict.py's NumPy preprocessing equals cnndash.preprocess exactly.


def test_numpy_resize_is_bit_exact_with_torchvision(bundle_predict):
    rng = np.random.default_rng(0)
    shapes = [(1, 1), (1, 300), (300, 1), (32, 32), (33, 32), (8, 8), (224, 224), (7, 500)]
    shapes += [tuple(int(v) for v in rng.integers(1, 400, size=2)) for _ in range(60)]
    for i, (h, w) in enumerate(shapes):
        channels = 1 if i % 2 else 3
        out_h, out_w = (int(v) for v in rng.choice([5, 17, 28, 32, 64, 100, 224], size=2))
        pixels = rng.integers(0, 256, (channels, h, w), dtype=np.uint8)
        if i % 3 == 0:  # smooth gradients as well as noise: rounding shows on both
            pixels = np.broadcast_to(np.linspace(0, 255, w, dtype=np.uint8), (channels, h, w)).copy()
        expected = TF.resize(torch.from_numpy(pixels), [out_h, out_w], antialias=True).numpy()
        got = bundle_predict.resize_uint8(pixels, out_h, out_w)
        assert got.dtype == np.uint8 and got.shape == expected.shape
        assert np.array_equal(got, expected), (h, w, out_h, out_w, channels)


def _fresh_images() -> dict[str, Image.Image]:
    """Files a user might drop in: every awkward mode, sizes unlike the training set's."""
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (70, 50, 3), dtype=np.uint8))
    rgba = Image.fromarray(rng.integers(0, 256, (33, 40, 4), dtype=np.uint8))
    gray = Image.fromarray(rng.integers(0, 256, (90, 17), dtype=np.uint8))
    sixteen = Image.fromarray(rng.integers(0, 65535, (48, 64), dtype=np.uint16))
    palette = rgb.convert("P", palette=Image.Palette.ADAPTIVE)
    palette.info["transparency"] = 3
    return {
        "photo.jpg": rgb.resize((300, 200)),
        "cmyk.jpg": rgb.convert("CMYK"),
        "rgba.png": rgba,
        "gray.png": gray,
        "sixteen.png": sixteen,
        "la.png": rgba.convert("LA"),
        "palette.png": palette,
        "tiny.png": rgb.resize((3, 2)),
        # Shorter side >= 2 * DECODE_MIN_SIDE: both decoders reduce it while decoding (JPEG draft, PNG reduce).
        "large.jpg": rgb.resize((2600, 2100)),
        "large.png": gray.resize((2100, 2300)),
    }


def _write(images: dict[str, Image.Image], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, image in images.items():
        image.save(folder / name)
        paths.append(folder / name)
    return paths


@pytest.mark.parametrize("channels", [1, 3])
def test_bundle_preprocessing_equals_cnndash_preprocessing(bundle_predict, tmp_path, channels):
    for path in _write(_fresh_images(), tmp_path):
        image = preprocess.open_image(path.read_bytes(), path.name)
        for size in (8, 32, 61):
            expected = preprocess.image_to_uint8(image, channels=channels, size=size).float().div(255)
            got = bundle_predict.image_to_array(bundle_predict.load_image(path), channels, (size, size))
            assert np.array_equal(got, expected.numpy()), (path.name, size)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=12), st.integers(), st.floats(allow_nan=False), st.none()))
def test_bundle_csv_escapes_formulas_exactly_as_cnndash(value):
    bundle = _load_module(TEMPLATE, "bundle_predict_csv")
    assert bundle.FORMULA_STARTS == tables.FORMULA_STARTS
    assert bundle.spreadsheet_safe(value) == tables.spreadsheet_safe(value)


def test_bundle_csv_writes_formula_names_as_text(bundle_predict):
    out = io.StringIO()
    probs = np.array([[0.2, 0.8]])
    bundle_predict.write_csv(['=HYPERLINK("http://x","y").png'], probs, ["cat", "+cmd"], 2, out=out)
    row = list(csv.reader(io.StringIO(out.getvalue())))[1]
    assert row[:2] == ['\'=HYPERLINK("http://x","y").png', "'+cmd"] and row[3] == "cat"


def test_bundle_recipe_constants_match_cnndash(bundle_predict):
    assert set(IMAGE_EXTENSIONS) <= bundle_predict.IMAGE_SUFFIXES
    # predict.py cannot import cnndash: its copies of the decoding rules must stay equal to preprocess's.
    assert bundle_predict.GRAY_MODES == preprocess.GRAY_MODES
    assert bundle_predict.SIXTEEN_BIT_MODES == preprocess.SIXTEEN_BIT_MODES
    assert bundle_predict.REDUCIBLE_MODES == preprocess._REDUCIBLE_MODES
    assert bundle_predict.DECODE_MIN_SIDE == preprocess.DECODE_MIN_SIDE
    assert set(predict_files.PREDICT_EXTENSIONS) == bundle_predict.IMAGE_SUFFIXES


# --------------------------------------------------------------------------------------------------
# Every built-in model, gray and RGB: train one epoch, export, and compare every way of predicting.


def _gray_dataset(root: Path) -> Path:
    """A 3-class folder of 32×32 grayscale PNGs (made from the shapes generator, 16 per class)."""
    folder = root / "gray-shapes"
    if folder.is_dir():
        return folder
    images, _masks, targets = generate_shapes(count=48, size=32, seed=3)
    for i, (pixels, target) in enumerate(zip(images, targets, strict=True)):
        (folder / f"class{int(target)}").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(pixels)).convert("L").save(folder / f"class{int(target)}" / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def trained_runs(tmp_path_factory):
    """One finished 1-epoch run per (model, channels), trained lazily and kept for the module."""
    root = tmp_path_factory.mktemp("export-runs")
    runs: dict[tuple[str, int], Path] = {}

    def get(model: str, channels: int) -> Path:
        if (model, channels) not in runs:
            dataset = "shapes:count=60,size=32" if channels == 3 else str(_gray_dataset(root))
            config = TrainConfig(dataset=dataset, model=model, epochs=1, batch_size=16, seed=0)
            train(config, root / f"{model}-{channels}")
            runs[(model, channels)] = root / f"{model}-{channels}"
        return runs[(model, channels)]

    return get


def _assert_same(reference: np.ndarray, other: np.ndarray, what: str) -> None:
    assert other.shape == reference.shape, what
    np.testing.assert_allclose(other, reference, atol=TOLERANCE, rtol=0, err_msg=what)
    top2 = np.sort(reference, axis=1)[:, -2:] if reference.shape[1] > 1 else None
    decided = np.ones(len(reference), bool) if top2 is None else (top2[:, 1] - top2[:, 0]) > TIE
    assert decided.mean() > 0.5, f"{what}: too many ties to compare top-1"
    assert np.array_equal(reference.argmax(1)[decided], other.argmax(1)[decided]), what


def _csv_probabilities(text: str, classes: list[str]) -> tuple[list[str], np.ndarray]:
    """(paths, top-k probabilities per class) from a ``path,predicted,probability,top2,p2…`` CSV."""
    lines = text.strip().splitlines()
    probs = np.full((len(lines) - 1, len(classes)), np.nan)
    paths = []
    for row, line in enumerate(lines[1:]):
        cells = line.split(",")
        paths.append(cells[0])
        for name, value in zip(cells[1::2], cells[2::2], strict=True):
            probs[row, classes.index(name)] = float(value)
    return paths, probs


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_export_round_trips_with_parity(trained_runs, bundle_predict, tmp_path, model_name, channels, capsys):
    run_dir = trained_runs(model_name, channels)
    run = load_run(run_dir)
    result = export.export_run(run, tmp_path / "bundle")
    card = json.loads((result.path / "model.json").read_text())
    assert card["classes"] == run.classes and card["channels"] == channels == run.in_channels
    assert card["input_size"] == [run.image_size, run.image_size] and card["model"] == model_name
    assert card["mean"] == run.dataset_info["mean"] and card["val_accuracy"] == run.summary["val_accuracy"]
    assert len(card["dataset_fingerprint"]) == 64 and card["versions"]["torch"] == torch.__version__
    for name in ("model.json", "model.torchscript.pt", "model.onnx", "predict.py", "README.md"):
        assert (result.path / name).is_file(), name
    assert max(card["parity"].values()) <= TOLERANCE

    # Validation images and fresh files of other sizes and modes, through every path.
    val = run.dataset().val
    images = [val[i][0] for i in range(min(len(val), 12))]
    files = _write(_fresh_images(), tmp_path / "fresh")
    images += [preprocess.open_image(p.read_bytes(), p.name) for p in files]
    app = predict.predict_images(run, images)
    for engine in ("onnx", "torchscript"):
        bundle = bundle_predict.Model(result.path, engine)
        _assert_same(app, bundle.predict(images), f"{model_name}/{channels}: {engine}")

    # The CLI on the fresh files (CSV rounded to 6 decimals, top-k = every class).
    capsys.readouterr()
    assert cli_main(["predict", "--run", str(run_dir), str(tmp_path / "fresh"), "--top-k", "99"]) == 0
    paths, cli = _csv_probabilities(capsys.readouterr().out, run.classes)
    assert paths == sorted(str(p) for p in files)
    order = [files.index(Path(p)) for p in paths]
    _assert_same(app[-len(files) :][order], cli, f"{model_name}/{channels}: CLI")


def test_int8_variant_reports_size_and_accuracy_side_by_side(trained_runs, tmp_path):
    run_dir = trained_runs("simplecnn", 3)
    result = export.export_run(run_dir, tmp_path / "b", ["torchscript", "onnx", "onnx-int8"])
    variants = result.card["variants"]
    assert (result.path / "model.int8.onnx").is_file()
    assert variants["onnx-int8"]["bytes"] < variants["onnx"]["bytes"]
    for name in ("onnx", "onnx-int8"):
        assert 0.0 <= variants[name]["val_accuracy"] <= 1.0
    assert variants["onnx"]["val_accuracy"] == pytest.approx(variants["pytorch"]["val_accuracy_measured"])
    assert 0.0 <= variants["onnx-int8"]["top1_agreement_with_float"] <= 1.0


def test_bundle_predict_py_runs_without_cnndash(trained_runs, tmp_path):
    run_dir = trained_runs("lenet", 3)
    export.export_run(run_dir, tmp_path / "bundle")
    copy = Path(shutil.copytree(tmp_path / "bundle", tmp_path / "elsewhere" / "my model"))
    files = _write(_fresh_images(), tmp_path / "imgs")
    work = tmp_path / "cwd"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    probe = subprocess.run(
        [sys.executable, "-I", "-c", "import cnndash"], cwd=work, env=env, capture_output=True, text=True
    )
    assert probe.returncode != 0, "cnndash must not be importable for this test to mean anything"
    outputs = {}
    for engine in ("onnx", "torchscript"):
        done = subprocess.run(
            [
                sys.executable,
                "-I",
                str(copy / "predict.py"),
                str(tmp_path / "imgs"),
                "--engine",
                engine,
                "--top-k",
                "3",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == "", done.stderr
        outputs[engine] = done.stdout
    run = load_run(run_dir)
    app = predict.predict_images(run, [preprocess.open_image(p.read_bytes(), p.name) for p in files])
    for engine, text in outputs.items():
        assert text.splitlines()[0] == "path,predicted,probability,top2,p2,top3,p3"
        paths, probs = _csv_probabilities(text, run.classes)
        order = [files.index(Path(p)) for p in paths]
        _assert_same(app[order], probs, engine)
    # Bad input: one line on stderr, exit 2.
    (tmp_path / "broken.png").write_bytes(b"not an image")
    for args in ([str(tmp_path / "broken.png")], [str(tmp_path / "cwd")], ["missing.png"]):
        done = subprocess.run(
            [sys.executable, "-I", str(copy / "predict.py"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 2 and done.stdout == ""
        assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: "), done.stderr


# --------------------------------------------------------------------------------------------------
# What cannot be exported says why.


def test_run_without_checkpoint_cannot_be_exported(trained_runs, tmp_path):
    run_dir = Path(shutil.copytree(trained_runs("lenet", 3), tmp_path / "run"))
    (run_dir / "best.pt").unlink()
    with pytest.raises(RunError, match=r"no best\.pt"):
        export.export_run(run_dir, tmp_path / "bundle")
    assert not (tmp_path / "bundle").exists()


def test_unknown_or_inconsistent_formats_are_refused(trained_runs, tmp_path):
    with pytest.raises(export.ExportError, match="Unknown export format 'tflite'"):
        export.export_run(trained_runs("lenet", 3), tmp_path / "b", ["tflite"])
    with pytest.raises(export.ExportError, match="add 'onnx'"):
        export.export_run(trained_runs("lenet", 3), tmp_path / "b", ["onnx-int8"])


def test_parity_failure_refuses_the_bundle(trained_runs, tmp_path, monkeypatch):
    real = export._torchscript_probabilities
    monkeypatch.setattr(export, "_torchscript_probabilities", lambda path, batch: real(path, batch) + 0.01)
    with pytest.raises(export.ExportError, match="disagrees with the trained model"):
        export.export_run(trained_runs("lenet", 3), tmp_path / "b")
    assert not (tmp_path / "b").exists() and not list(tmp_path.glob(".b.*"))


def test_bundle_zip_holds_every_file(trained_runs, tmp_path):
    result = export.export_run(trained_runs("lenet", 3), tmp_path / "bundle", ["onnx"])
    with zipfile.ZipFile(io.BytesIO(export.bundle_zip(result.path))) as archive:
        names = sorted(archive.namelist())
    assert names == sorted(f"bundle/{name}" for name in result.files)
    assert "bundle/model.torchscript.pt" not in names
