"""Export a trained run as a self-contained bundle that gives the same answers outside cnndash.

:func:`export_run` writes into one folder:

- ``model.json``          — the model card: classes in output order, channels, ``input_size`` ``[H, W]``,
  mean/std, model, validation accuracy, dataset fingerprint, training config, versions, the parity
  measured at export time and (with ``onnx-int8``) size and accuracy of the float and int8 variants;
- ``model.torchscript.pt`` — :class:`ProbabilityModel` traced: float32 ``(N, C, H, W)`` in ``[0, 1]`` at
  ``input_size`` in, class probabilities ``(N, K)`` out (normalisation and softmax inside);
- ``model.onnx``          — the same module through ``torch.onnx.export`` (dynamic batch), checked with
  ``onnx.checker`` and run with onnxruntime before the bundle is declared good;
- ``model.int8.onnx``     — optional: onnxruntime dynamic int8 quantisation of the ONNX model;
- ``predict.py``          — ``template/predict.py`` verbatim: Pillow + NumPy preprocessing that is
  bit-exact with :mod:`cnndash.preprocess`, then onnxruntime or torch;
- ``README.md``.

Every model file is loaded back and compared with the eager model on the run's validation images (or
random images when the dataset is gone); a difference above :data:`PARITY_TOLERANCE` refuses the bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torchvision
from torch import nn

import cnndash
from cnndash.errors import UserError
from cnndash.export.onnx_model import export_onnx, onnx_probabilities, quantize_onnx
from cnndash.preprocess import images_to_uint8
from cnndash.runs import Run, load_run

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
FORMATS = ("torchscript", "onnx", "onnx-int8")
DEFAULT_FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "model.torchscript.pt", "onnx": "model.onnx", "onnx-int8": "model.int8.onnx"}
PARITY_TOLERANCE = 1e-4  # max |Δ probability| between eager PyTorch and an exported file
PROBE_IMAGES = 64  # validation images used for the parity check
ACCURACY_IMAGES = 5000  # at most this many validation images for the accuracies in the model card
ProgressCallback = Callable[[str, float], None]  # (what is happening, fraction done)


class ExportError(UserError):
    """A run that cannot be exported, or an export that does not reproduce the model; says why."""


class ProbabilityModel(nn.Module):
    """A trained model as exported: ``[0, 1]`` images at input size -> class probabilities."""

    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model((images - self.mean) / self.std), dim=1)


@dataclass
class ExportResult:
    path: Path
    card: dict
    files: list[str] = field(default_factory=list)


def _check_formats(formats: Sequence[str]) -> tuple[str, ...]:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(
            "Unknown export format {unknown}; choose from {formats}.",
            unknown=repr(unknown[0]),
            formats=", ".join(FORMATS),
        )
    if "onnx-int8" in formats and "onnx" not in formats:
        raise ExportError("The int8 variant is quantised from model.onnx; add 'onnx' to the formats.")
    if not formats:
        raise ExportError("No export format chosen; pick at least one of torchscript, onnx.")
    return tuple(f for f in FORMATS if f in formats)


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _validation_set(run: Run) -> tuple[torch.Tensor, np.ndarray, str]:
    """The run's validation images as uint8 at input size, their labels, and the dataset fingerprint.

    The fingerprint is the SHA-256 of the classes, labels and preprocessed pixels the accuracy was
    measured on; when the dataset can no longer be loaded it is the hash of ``dataset.json`` (marked so).
    """
    try:
        dataset = run.dataset()
    except ValueError:
        info = json.dumps(run.dataset_info, sort_keys=True).encode()
        empty = torch.zeros((0, run.in_channels, run.image_size, run.image_size), dtype=torch.uint8)
        return empty, np.zeros(0, dtype=np.int64), "dataset.json:" + _sha256_bytes(info)
    val = dataset.val
    count = min(len(val), ACCURACY_IMAGES)
    images = [val[i][0] for i in range(count)]
    pixels = images_to_uint8(images, channels=run.in_channels, size=run.image_size)
    targets = np.asarray(val.targets[:count], dtype=np.int64)
    digest = hashlib.sha256(json.dumps(list(dataset.classes)).encode())
    digest.update(targets.tobytes())
    digest.update(pixels.numpy().tobytes())
    return pixels, targets, digest.hexdigest()


def _probe(pixels: torch.Tensor, channels: int, size: int) -> torch.Tensor:
    """float32 ``[0, 1]`` images to compare the formats on: validation images, or seeded noise."""
    if len(pixels):
        return pixels[:PROBE_IMAGES].float().div_(255.0)
    generator = torch.Generator().manual_seed(0)
    return torch.rand((8, channels, size, size), generator=generator)


def _torchscript(wrapper: ProbabilityModel, probe: torch.Tensor, path: Path) -> None:
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated but still the format
            traced = torch.jit.trace(wrapper, probe[:2], check_trace=False)
            traced.save(str(path))
    except Exception as exc:  # tracing fails with many types; the message is what the user needs
        raise ExportError(
            "The model could not be exported to TorchScript ({first_line}); export ONNX only "
            "(formats=['onnx']).",
            first_line=_first_line(exc),
        ) from exc


def _torchscript_probabilities(path: Path, batch: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.no_grad():
        return module(batch).numpy()


def _compare(name: str, expected: np.ndarray, got: np.ndarray) -> float:
    if got.shape != expected.shape:
        raise ExportError(
            "{name} returns shape {got_shape} where the model returns {expected_shape}; not exported.",
            name=name,
            got_shape=got.shape,
            expected_shape=expected.shape,
        )
    diff = float(np.abs(got - expected).max()) if expected.size else 0.0
    if not diff <= PARITY_TOLERANCE:
        raise ExportError(
            "{name} disagrees with the trained model by {diff:.2e} in probability (tolerance "
            "{parity_tolerance:g}); the bundle was not written. Report this model.",
            name=name,
            diff=diff,
            parity_tolerance=PARITY_TOLERANCE,
        )
    return diff


def _accuracy(probabilities: np.ndarray, targets: np.ndarray) -> float | None:
    if not len(targets):
        return None
    return float((probabilities.argmax(axis=1) == targets).mean())


def _batched(fn: Callable[[torch.Tensor], np.ndarray], pixels: torch.Tensor, k: int) -> np.ndarray:
    """``fn`` over float images made from uint8 ``pixels`` 256 at a time (bounded memory)."""
    chunks = [fn(pixels[s : s + 256].float().div_(255.0)) for s in range(0, len(pixels), 256)]
    return np.concatenate(chunks) if chunks else np.zeros((0, k), dtype=np.float32)


def _write_text_files(folder: Path, card: dict) -> None:
    shutil.copyfile(TEMPLATE_DIR / "predict.py", folder / "predict.py")
    readme = (TEMPLATE_DIR / "README.md").read_text(encoding="utf-8")
    size = card["input_size"]
    values = {
        "run": card["run"],
        "model": card["model"],
        "classes": ", ".join(card["classes"]),
        "num_classes": str(len(card["classes"])),
        "channels": str(card["channels"]),
        "mode": "L (grayscale)" if card["channels"] == 1 else "RGB",
        "height": str(size[0]),
        "width": str(size[1]),
        "val_accuracy": "n/a" if card["val_accuracy"] is None else f"{card['val_accuracy']:.2%}",
    }
    for key, value in values.items():
        readme = readme.replace("{{" + key + "}}", value)
    (folder / "README.md").write_text(readme, encoding="utf-8")
    (folder / "model.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")


def model_card(run: Run, checkpoint: str = "best") -> dict:
    """The model card of ``run``'s checkpoint (what ``model.json`` holds, before export measurements)."""
    ckpt = run.load_checkpoint(checkpoint)
    summary = run.summary or {}
    return {
        "format": "cnndash-bundle/1",
        "run": run.name,
        "checkpoint": checkpoint,
        "epoch": int(ckpt.state.epoch),
        "model": ckpt.model_name,
        "classes": list(ckpt.classes),
        "channels": int(ckpt.in_channels),
        "input_size": [int(ckpt.image_size), int(ckpt.image_size)],
        "mean": [float(v) for v in ckpt.mean],
        "std": [float(v) for v in ckpt.std],
        "val_accuracy": summary.get("val_accuracy"),
        "dataset": run.config.get("dataset"),
        "training_config": dict(ckpt.config),
        "input": "float32 (N, C, H, W) in [0, 1], resized to input_size; the model normalises",
        "output": "float32 (N, K) class probabilities, K = len(classes)",
        "preprocessing": (
            "Pillow decode (no EXIF rotation); convert to L or RGB compositing transparency on white; "
            "antialiased bilinear uint8 resize (torch/Pillow-SIMD int16 fixed point, horizontal then "
            "vertical); / 255"
        ),
        "versions": {
            "cnndash": cnndash.__version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
        },
    }


def export_run(
    run: Run | str | os.PathLike,
    out_dir: str | os.PathLike,
    formats: Sequence[str] = DEFAULT_FORMATS,
    *,
    checkpoint: str = "best",
    on_progress: ProgressCallback | None = None,
) -> ExportResult:
    """Write ``run``'s bundle into ``out_dir`` (created; bundle files in it are replaced) and return it.

    Raises :class:`ExportError` (a ``ValueError``) for an unknown format, a missing export dependency or
    an exported file that disagrees with the model, and :class:`cnndash.runs.RunError` for a run without
    a readable checkpoint. Nothing is written to ``out_dir`` unless every check passes.
    """
    formats = _check_formats(formats)
    run = run if isinstance(run, Run) else load_run(run)
    progress = on_progress or (lambda _text, _fraction: None)
    progress("Loading the model", 0.0)
    card = model_card(run, checkpoint)
    model = run.load_model(checkpoint, device="cpu")
    wrapper = ProbabilityModel(model, card["mean"], card["std"]).eval()
    progress("Reading the validation images", 0.1)
    pixels, targets, card["dataset_fingerprint"] = _validation_set(run)
    probe = _probe(pixels, card["channels"], card["input_size"][0])
    with torch.no_grad():
        expected = wrapper(probe).numpy()
        eager_probs = _batched(lambda x: wrapper(x).numpy(), pixels, len(card["classes"]))
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        card["parity"], card["variants"] = _build_files(
            wrapper, probe, expected, staging, formats, pixels, targets, eager_probs, progress
        )
        card["variants"]["pytorch"] = {"val_accuracy_measured": _accuracy(eager_probs, targets)}
        card["files"] = {
            name: {"bytes": (staging / name).stat().st_size} for name in sorted(os.listdir(staging))
        }
        progress("Writing predict.py, README.md and model.json", 0.95)
        _write_text_files(staging, card)
        out.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            os.replace(item, out / item.name)
        for fmt in FORMATS:  # a format left out this time must not linger from an earlier build
            if fmt not in formats:
                (out / FILES[fmt]).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress("Done", 1.0)
    return ExportResult(path=out, card=card, files=sorted(p.name for p in out.iterdir() if p.is_file()))


def _build_files(
    wrapper, probe, expected, folder: Path, formats, pixels, targets, eager_probs, progress
) -> tuple[dict, dict]:
    """Write each format into ``folder``, load it back and compare; (parity, variants) for the card."""
    parity: dict[str, float] = {}
    variants: dict[str, dict] = {}
    k = expected.shape[1]
    if "torchscript" in formats:
        progress("Tracing TorchScript", 0.2)
        path = folder / FILES["torchscript"]
        _torchscript(wrapper, probe, path)
        parity["torchscript"] = _compare(
            "model.torchscript.pt", expected, _torchscript_probabilities(path, probe)
        )
        parity["torchscript_batch_of_one"] = _compare(
            "model.torchscript.pt (batch of 1)", expected[:1], _torchscript_probabilities(path, probe[:1])
        )
    if "onnx" in formats:
        progress("Exporting ONNX", 0.4)
        path = folder / FILES["onnx"]
        export_onnx(wrapper, probe, path)
        parity["onnx"] = _compare("model.onnx", expected, onnx_probabilities(path, probe.numpy()))
        parity["onnx_batch_of_one"] = _compare(
            "model.onnx (batch of 1)", expected[:1], onnx_probabilities(path, probe[:1].numpy())
        )
        onnx_probs = _batched(lambda x: onnx_probabilities(path, x.numpy()), pixels, k)
        variants["onnx"] = {"bytes": path.stat().st_size, "val_accuracy": _accuracy(onnx_probs, targets)}
    if "onnx-int8" in formats:
        progress("Quantising to int8", 0.7)
        path = folder / FILES["onnx-int8"]
        quantize_onnx(folder / FILES["onnx"], path)
        int8_probs = _batched(lambda x: onnx_probabilities(path, x.numpy()), pixels, k)
        agree = float((int8_probs.argmax(1) == eager_probs.argmax(1)).mean()) if len(targets) else None
        variants["onnx-int8"] = {
            "bytes": path.stat().st_size,
            "val_accuracy": _accuracy(int8_probs, targets),
            "top1_agreement_with_float": agree,
            "max_probability_difference": float(np.abs(int8_probs - eager_probs).max())
            if len(targets)
            else None,
        }
    return parity, variants


def bundle_zip(bundle_dir: str | os.PathLike, root: str | None = None) -> bytes:
    """The bundle folder as one zip, its files inside one folder ``root`` (default: the folder's name)."""
    folder = Path(bundle_dir)
    root = root or folder.name
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            if path.is_file():
                archive.write(path, f"{root}/{path.name}")
    return buffer.getvalue()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
