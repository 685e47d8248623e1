"""Pretrained weights on the Training page (ui.training.weights_view): an uploaded torchvision weights file is
imported through the engine's hash and architecture checks; a wrong file is refused with nothing written, a
right one makes fine-tuning the one-click suggestion for colour photos, with the transfer modes explained."""

from __future__ import annotations

import hashlib
import io

import pytest
import torch
import torchvision.models as tvm

from cnndash import data
from cnndash.models import pretrained_weights_path
from tests.pages.test_pages import run_page
from tests.pages.test_training_auto import photo_folder

PAGE = "pages/training.py"


@pytest.fixture(autouse=True)
def _own_torch_home(tmp_path, monkeypatch):
    """torch.hub's cache (where imported weights go) inside the test's folder, never the user's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def upload(at, name: str, payload: bytes):
    at.get("file_uploader")[0].set_value((name, payload, "application/octet-stream")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def resnet18_file() -> tuple[str, bytes]:
    """A ResNet-18 state dict (freshly initialised) named as torchvision names its files: model-<sha prefix>."""
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save(tvm.resnet18(weights=None).state_dict(), buffer)
    payload = buffer.getvalue()
    return f"resnet18-{hashlib.sha256(payload).hexdigest()[:8]}.pth", payload


def test_a_wrong_hash_is_refused_with_nothing_written():
    at = run_page(PAGE)
    payload = resnet18_file()[1]
    upload(at, "resnet18-f37072fd.pth", payload)  # torchvision's name, other bytes
    errors = [e.value for e in at.error]
    assert any("SHA-256" in e and "f37072fd" in e for e in errors), errors
    folder = pretrained_weights_path("resnet18").parent
    assert not folder.exists() or not any(folder.iterdir())  # no file, not even a temporary one
    assert not any("Fine-tuning is the default" in m.value for m in at.markdown)


def test_imported_weights_make_fine_tuning_the_suggestion_for_photos(tmp_path):
    data.import_dataset(photo_folder(tmp_path / "photos"), "photos")
    at = run_page(PAGE)
    at.selectbox(key="train-dataset").set_value("photos").run()
    assert not at.checkbox(key="train-pretrained").value  # no weights yet: a model from scratch
    name, payload = resnet18_file()
    upload(at, name, payload)
    assert not at.error, [e.value for e in at.error]
    assert pretrained_weights_path("resnet18").is_file()
    assert any("resnet18 ImageNet weights imported" in s.value for s in at.success)
    assert any("Fine-tuning is the default" in m.value for m in at.markdown)
    assert at.selectbox(key="train-model").value == "resnet18" and at.checkbox(key="train-pretrained").value
    assert at.selectbox(key="train-transfer").value == "lower_lr"
