"""ONNX side of the export: ``torch.onnx.export`` (dynamo), the checker, onnxruntime, int8 quantisation.

onnx, onnxscript and onnxruntime are runtime requirements, but a missing one must not break the rest of
cnndash: each function raises :class:`OnnxUnavailableError` (a ``ValueError``) naming the package instead.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from cnndash.errors import UserError

OPSET = 18


class OnnxUnavailableError(UserError):
    """ONNX export asked for, but onnx / onnxscript / onnxruntime are not installed."""


def _require() -> SimpleNamespace:
    """onnx and onnxruntime, imported on first use.

    Why not at the top: importing them takes ~0.8 s, and every page with the export panel (Training,
    Evaluation) imports this module, so a first paint paid for an export nobody had asked for yet. A missing
    package is an :class:`OnnxUnavailableError` naming it, so the rest of cnndash works without them.
    """
    try:
        import onnx
        import onnxruntime
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise OnnxUnavailableError(
            "ONNX export needs the package {exc_name}, which is not installed; run `pip install onnx "
            "onnxscript onnxruntime` or export TorchScript only.",
            exc_name=repr(exc.name or "onnx"),
        ) from exc
    return SimpleNamespace(
        onnx=onnx, onnxruntime=onnxruntime, QuantType=QuantType, quantize_dynamic=quantize_dynamic
    )


def export_onnx(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    """``module`` to ONNX at ``path`` with a dynamic batch axis, checked by ``onnx.checker``."""
    onnx = _require().onnx
    batch = torch.export.Dim("batch", min=1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _quiet_exporter()
            program = torch.onnx.export(
                module,
                (example,),
                dynamo=True,
                input_names=["images"],
                output_names=["probabilities"],
                dynamic_shapes=({0: batch},),
                opset_version=OPSET,
                verbose=False,
            )
            program.save(str(path))
        onnx.checker.check_model(str(path), full_check=True)
    except ValueError:
        raise
    except Exception as exc:  # the exporter raises many types; the first line says what failed
        text = str(exc).strip().splitlines()
        raise OnnxUnavailableError(
            "The model could not be exported to ONNX ({error}); export TorchScript only.",
            error=text[0] if text else type(exc).__name__,
        ) from exc


def _quiet_exporter() -> None:
    """The dynamo exporter logs every pass at INFO; a CLI should print only its result."""
    for name in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript"):
        logging.getLogger(name).setLevel(logging.WARNING)


_SESSIONS: dict[tuple[str, int, int], object] = {}


def onnx_probabilities(path: Path, batch: np.ndarray) -> np.ndarray:
    """Run the ONNX file at ``path`` on ``batch`` with onnxruntime's CPU provider."""
    onnxruntime = _require().onnxruntime
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    session = _SESSIONS.get(key)
    if session is None:
        _SESSIONS.clear()  # one model at a time: sessions hold the weights
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        _SESSIONS[key] = session
    name = session.get_inputs()[0].name
    return session.run(None, {name: np.ascontiguousarray(batch, dtype=np.float32)})[0]


def quantize_onnx(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation (weights int8, activations quantised at run time) of ``source``."""
    ort = _require()
    root = logging.getLogger()
    hint = _DropQuantizationHint()
    root.addFilter(hint)
    try:
        ort.quantize_dynamic(str(source), str(target), weight_type=ort.QuantType.QInt8)
    except Exception as exc:  # onnxruntime raises many types
        text = str(exc).strip().splitlines()
        raise OnnxUnavailableError(
            "The ONNX model could not be quantised to int8 ({error}); export without the int8 variant.",
            error=text[0] if text else type(exc).__name__,
        ) from exc
    finally:
        root.removeFilter(hint)


class _DropQuantizationHint(logging.Filter):
    """onnxruntime's quantiser logs a pre-processing tip on the root logger at every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()
