"""Pretrained ImageNet weights without internet: import a torchvision weights file downloaded elsewhere.

torchvision names its weight files ``<model>-<first hex digits of the file's SHA-256>.pth``
(``resnet18-f37072fd.pth``) and ``torch.hub`` checks a download against that prefix. cnndash never downloads:
:func:`import_weights` takes a file someone downloaded on another machine (or uploaded on the Training page),
checks the name's hash prefix against the content, checks that the tensors fit the architecture exactly, and
stores it where :func:`cnndash.models.pretrained_weights_path` looks (torch's hub cache), atomically. A file
that fails any check raises :class:`WeightsError` and nothing is written.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from cnndash.errors import UserError
from cnndash.models import pretrained_weights_path
from cnndash.text import N_, Phrase

MODELS_WITH_WEIGHTS = ("resnet18", "mobilenet_v2")
# The largest weights file accepted: ResNet-18's is 45 MB and MobileNetV2's 14 MB; anything far larger is not
# one of them, and reading it would cost memory for nothing.
MAX_WEIGHTS_BYTES = 200 * 2**20
WEIGHTS_NAME = re.compile(r"(?P<model>[a-z0-9_]+)-(?P<prefix>[0-9a-f]{6,64})\.pth")
_CHUNK = 2**20


class WeightsError(UserError):
    """A weights file that cannot be imported; the message says why and what file to use instead."""


@dataclass(frozen=True)
class ImportedWeights:
    model: str
    path: Path  # where it is stored now
    sha256: str
    published: bool  # the exact file torchvision publishes for cnndash's weights (not another version)

    def text(self) -> Phrase:
        which = Phrase(
            N_("torchvision's published file")
            if self.published
            else N_("a verified file (not the version cnndash names)")
        )
        return Phrase(
            N_("{model} ImageNet weights imported ({which}, SHA-256 {digest}…) into {path}."),
            model=self.model,
            which=which,
            digest=self.sha256[:12],
            path=str(self.path),
        )


def published_name(model: str) -> str:
    """The file name torchvision publishes for ``model``'s weights (``resnet18-f37072fd.pth``)."""
    return pretrained_weights_path(model).name


def weights_installed(model: str) -> bool:
    """True when ``model``'s ImageNet weights are where :func:`cnndash.models.build_model` loads them from."""
    return model in MODELS_WITH_WEIGHTS and pretrained_weights_path(model).is_file()


def _check_name(name: str) -> tuple[str, str]:
    match = WEIGHTS_NAME.fullmatch(name)
    expected = " or ".join(published_name(m) for m in MODELS_WITH_WEIGHTS)
    if match is None:
        raise WeightsError(
            "{name} is not named like a torchvision weights file (<model>-<hash prefix>.pth); keep the name "
            "it was downloaded with, e.g. {expected}.",
            name=repr(name),
            expected=expected,
        )
    model = match["model"]
    if model not in MODELS_WITH_WEIGHTS:
        raise WeightsError(
            "cnndash uses ImageNet weights for {models} only: import {expected}.",
            models=", ".join(MODELS_WITH_WEIGHTS),
            expected=expected,
        )
    return model, match["prefix"]


def _check_fits(model: str, path: Path) -> None:
    """The file holds a state dict with exactly the architecture's tensors and shapes."""
    import torchvision.models as tvm

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # not a torch file, or one that needs unpickling code: torch raises many types
        raise WeightsError(
            "The file cannot be read as PyTorch weights ({kind}); download {file} again.",
            kind=type(exc).__name__,
            file=published_name(model),
        ) from None
    if not isinstance(state, dict):
        raise WeightsError(
            "The file holds no state dict of weights; download {file} again.", file=published_name(model)
        )
    try:
        getattr(tvm, model)(weights=None).load_state_dict(state, strict=True)
    except (RuntimeError, TypeError) as exc:
        first = str(exc).splitlines()[0][:160]
        raise WeightsError(
            "The file's tensors do not fit torchvision's {model} ({first}).", model=model, first=first
        ) from None


def import_weights(path: str | os.PathLike, *, name: str | None = None) -> ImportedWeights:
    """Verify the weights file at ``path`` and store it where cnndash loads pretrained weights from.

    ``name`` is the file's name as downloaded (default: ``path``'s own; an upload passes the uploaded name,
    which is only parsed, never used as a path). Raises :class:`WeightsError` — and writes nothing — for a
    name that is not ``<resnet18|mobilenet_v2>-<hash prefix>.pth``, a file larger than
    :data:`MAX_WEIGHTS_BYTES`, content whose SHA-256 does not start with the prefix (corrupt, truncated or
    renamed), or tensors that do not fit the architecture."""
    path = Path(path)
    model, prefix = _check_name(name if name is not None else path.name)
    dest = pretrained_weights_path(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # Copied beside the destination while hashing, the copy checked, then renamed into place: a reader never
    # sees half a file, two imports never mix, and what was checked is exactly what is stored.
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _copy_hashed(path, out, model)
        if not digest.startswith(prefix):
            raise WeightsError(
                "The file's SHA-256 starts with {digest}, not {prefix} as its name says: it is corrupt, "
                "truncated or renamed. Download {file} again.",
                digest=digest[: len(prefix)],
                prefix=prefix,
                file=published_name(model),
            )
        _check_fits(model, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ImportedWeights(
        model=model, path=dest, sha256=digest, published=dest.name == f"{model}-{prefix}.pth"
    )


def _copy_hashed(src: Path, out, model: str) -> str:
    """Copy ``src`` into ``out`` (at most MAX_WEIGHTS_BYTES, whatever the file claims) and return its SHA-256."""
    digest, copied = hashlib.sha256(), 0
    with src.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            copied += len(chunk)
            if copied > MAX_WEIGHTS_BYTES:
                raise WeightsError(
                    "The file is larger than {mb} MB; {model}'s weights are far smaller. Is it the right file?",
                    mb=MAX_WEIGHTS_BYTES // 2**20,
                    model=model,
                )
            digest.update(chunk)
            out.write(chunk)
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()
