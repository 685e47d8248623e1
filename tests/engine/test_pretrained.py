"""Importing ImageNet weights without internet: a real state dict saved under a name whose hash prefix is the
content's is installed where build_model(pretrained=True) loads it; a wrong prefix, a foreign name or another
architecture's tensors are refused with nothing written (the files are made here, never downloaded)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch
import torchvision.models as tvm

from cnndash.cli import main as cli_main
from cnndash.models import build_model, pretrained_weights_path
from cnndash.pretrained import WeightsError, import_weights, weights_installed


@pytest.fixture(autouse=True)
def _own_torch_home(tmp_path, monkeypatch):
    """torch.hub's cache (where the weights go) inside the test's folder, never the user's."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def saved_state(tmp_path, model: str, prefix_from_content: bool = True):
    """``model``'s freshly initialised state dict in a file named as torchvision names its downloads."""
    torch.manual_seed(0)
    raw = tmp_path / "raw.pth"
    torch.save(getattr(tvm, model)(weights=None).state_dict(), raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    prefix = digest[:8] if prefix_from_content else ("0" if digest[0] != "0" else "1") + digest[1:8]
    named = tmp_path / "downloads" / f"{model}-{prefix}.pth"
    named.parent.mkdir(exist_ok=True)
    shutil.move(raw, named)
    return named


def stored_files(tmp_path) -> list:
    folder = tmp_path / "torch-home" / "hub" / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_verified_file_is_installed_where_pretrained_models_load_it(tmp_path):
    source = saved_state(tmp_path, "resnet18")
    assert not weights_installed("resnet18")
    imported = import_weights(source)
    assert imported.path == pretrained_weights_path("resnet18") and weights_installed("resnet18")
    assert imported.path.read_bytes() == source.read_bytes()
    assert not imported.published  # made here, so not the bytes torchvision publishes
    assert stored_files(tmp_path) == ["resnet18-f37072fd.pth"]  # no temporary file left behind
    model = build_model("resnet18", num_classes=3, in_channels=3, image_size=96, pretrained=True)
    expected = torch.load(source, weights_only=True)["layer1.0.conv1.weight"]
    assert torch.equal(model.layer1[0].conv1.weight, expected)


@pytest.mark.parametrize(
    "case, message",
    [
        ("wrong-prefix", "not .* as its name says"),
        ("foreign-name", "not named like a torchvision weights file"),
        ("other-architecture", "do not fit torchvision's resnet18"),
        ("not-torch", "cannot be read as PyTorch weights"),
    ],
)
def test_a_file_that_fails_a_check_is_refused_and_nothing_is_written(tmp_path, case, message):
    if case == "wrong-prefix":
        source = saved_state(tmp_path, "resnet18", prefix_from_content=False)
    elif case == "foreign-name":
        source = saved_state(tmp_path, "resnet18").rename(tmp_path / "weights.pth")
    else:
        if case == "other-architecture":
            torch.save(tvm.mobilenet_v2(weights=None).state_dict(), tmp_path / "raw")
        else:
            (tmp_path / "raw").write_bytes(b"<html>Not found</html>")  # a failed download's error page
        digest = hashlib.sha256((tmp_path / "raw").read_bytes()).hexdigest()
        source = (tmp_path / "raw").rename(tmp_path / f"resnet18-{digest[:8]}.pth")
    with pytest.raises(WeightsError, match=message):
        import_weights(source)
    assert stored_files(tmp_path) == []
    assert not weights_installed("resnet18")


def test_the_cli_imports_and_lists(tmp_path, capsys):
    source = saved_state(tmp_path, "resnet18")
    assert cli_main(["weights", "import", str(source)]) == 0
    assert "resnet18 ImageNet weights imported" in capsys.readouterr().out
    assert cli_main(["weights", "list"]) == 0
    out = capsys.readouterr().out
    assert "resnet18: installed" in out and "mobilenet_v2: missing (import mobilenet_v2-b0353104.pth)" in out
    assert cli_main(["weights", "import", str(tmp_path / "nothing-here.pth")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
