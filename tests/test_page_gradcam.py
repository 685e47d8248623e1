"""Grad-CAM page through Streamlit's AppTest: a real trained run, real CAMs, every view."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from tests.conftest import ROOT

VIEWS = ["Compare methods", "Compare layers", "Confident mistakes", "Feature maps", "Filters", "Faithfulness"]


@pytest.fixture
def runs_dir(tmp_path, monkeypatch, tiny_run):
    """A runs folder holding a copy of the session's trained LeNet run, named "tiny"."""
    path = tmp_path / "runs"
    shutil.copytree(tiny_run, path / "tiny")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(path))
    return path


def open_page(session_state: dict | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    for key, value in (session_state or {}).items():
        at.session_state[key] = value
    at.switch_page("pages/grad_cam.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_no_runs_points_to_training():
    at = open_page()
    assert "No trained run" in at.info[0].value
    assert not at.error


def test_gradcam_for_a_trained_run(runs_dir):
    at = open_page()
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cam-run").value == "tiny"
    assert at.selectbox(key="cam-method").value == "gradcam"
    assert at.selectbox(key="cam-layer").value == "features.3"  # models.default_cam_layer("lenet")
    assert any("Prediction:" in m.value for m in at.markdown)
    images_before = len(at.get("image"))
    assert images_before >= 3  # original, heatmap, overlay

    at.selectbox(key="cam-method").set_value("gradcam++").run()
    at.selectbox(key="cam-layer").set_value("features.0").run()
    at.selectbox(key="cam-target").set_value(2).run()
    at.slider(key="cam-opacity").set_value(0.8).run()
    at.selectbox(key="cam-cmap").set_value("viridis").run()
    assert not at.exception and not at.error
    assert "Early layer" in " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_renders(runs_dir, view):
    at = open_page()
    at.radio(key="cam-explore").set_value(view).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    buttons = [b.proto.label for b in at.get("download_button")]
    assert "Download overlay PNG" in buttons
    if view in ("Compare methods", "Compare layers", "Confident mistakes"):
        assert "Download these overlays as one PNG" in buttons
    if view == "Faithfulness":
        labels = [m.label for m in at.metric]
        assert "Pointing game" in labels and "Chance level (object area)" in labels
        table = at.dataframe[0].value
        assert "features.3" in list(table["layer"])
        assert table["pointing game"].between(0, 1).all()


def test_misclassified_source_and_handoff_from_evaluation(runs_dir):
    at = open_page({"gradcam-image": {"run": "tiny", "index": 5}})
    assert at.number_input(key="cam-index").value == 5
    assert at.radio(key="cam-source").value == "Validation image"
    at.radio(key="cam-source").set_value("Misclassified").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="cam-mistake").value is not None


def test_broken_checkpoint_is_a_message_not_a_traceback(runs_dir):
    (runs_dir / "tiny" / "best.pt").write_bytes(b"not a checkpoint")
    at = open_page()
    assert not at.exception
    message = at.error[0].value
    assert "best.pt" in message or "best checkpoint" in message
    assert "cannot be" in message and "Traceback" not in message


def test_switching_to_a_run_with_other_layers_keeps_working(runs_dir):
    from cnndash.train import TrainConfig, train

    config = TrainConfig(dataset="shapes:count=60,size=32", model="resnet18", epochs=1, image_size=32)
    train(config, runs_dir / "resnet")
    at = open_page()
    at.selectbox(key="cam-run").set_value("tiny").run()
    at.radio(key="cam-explore").set_value("Compare layers").run()
    at.multiselect(key="cam-compare-layers").set_value(["features.0", "features.3"]).run()
    at.radio(key="cam-explore").set_value("Feature maps").run()
    at.selectbox(key="cam-feature-layer").set_value("features.1").run()
    at.radio(key="cam-explore").set_value("Compare layers").run()
    at.selectbox(key="cam-run").set_value("resnet").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.selectbox(key="cam-layer").value == "layer4"  # models.default_cam_layer("resnet18")
    assert all(
        n.startswith(("conv", "relu", "layer")) for n in at.multiselect(key="cam-compare-layers").value
    )
    at.radio(key="cam-explore").set_value("Feature maps").run()
    assert not at.exception, [e.value for e in at.exception]
