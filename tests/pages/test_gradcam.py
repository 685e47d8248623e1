"""Grad-CAM page through Streamlit's AppTest: a real trained run, real CAMs, every view."""

from __future__ import annotations

import io
import shutil

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnndash.evaluate import metrics, predict
from cnndash.explain import cam
from cnndash.explain import feature_maps as features
from cnndash.runs import load_run
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


def captions(at: AppTest) -> list[str]:
    return [image.proto.imgs[0].caption for image in at.get("image")]


def engine_view(run_dir, index: int = 0):
    """What the engine says about validation image ``index`` of the run: classes, probabilities, layers."""
    run = load_run(run_dir)
    model = run.load_model("best")
    image, label = run.dataset().val[index]
    probs = cam.predict_probabilities(model, run.preprocess([image]))[0]
    size = run.image_size
    layers = [info.name for info in cam.candidate_layers(model, (run.in_channels, size, size))]
    return run, model, probs, label, layers


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
    run, _, probs, label, layers = engine_view(runs_dir / "tiny")
    classes, predicted = run.classes, int(probs.argmax())
    assert [option.split("  ")[0] for option in at.selectbox(key="cam-layer").options] == layers
    assert at.selectbox(key="cam-target").value == predicted  # explains the prediction first
    verdict = next(m.value for m in at.markdown if "Prediction:" in m.value)
    assert verdict.startswith(f"**Prediction:** {classes[predicted]} ({probs[predicted]:.1%})")
    assert f"**True class:** {classes[label]}" in verdict
    assert captions(at)[:3] == [
        f"What the model sees (validation #0, {run.image_size}×{run.image_size})",
        f"Grad-CAM for '{classes[predicted]}'",
        "Overlay at features.3",
    ]

    at.selectbox(key="cam-method").set_value("gradcam++").run()
    at.selectbox(key="cam-layer").set_value("features.0").run()
    at.selectbox(key="cam-target").set_value(2).run()
    at.slider(key="cam-opacity").set_value(0.8).run()
    at.selectbox(key="cam-cmap").set_value("viridis").run()
    assert not at.exception and not at.error
    assert "Early layer" in " ".join(c.value for c in at.caption)
    assert captions(at)[1:3] == [f"Grad-CAM++ for '{classes[2]}'", "Overlay at features.0"]
    assert at.selectbox(key="cam-target").value == 2  # the same image: the chosen class stays
    at.number_input(key="cam-index").set_value(1).run()
    assert at.selectbox(key="cam-target").value == int(engine_view(runs_dir / "tiny", 1)[2].argmax())


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
    run, model, _, _, layers = engine_view(runs_dir / "tiny")
    shown = captions(at)[3:]  # after the main view's three images
    if view == "Compare methods":
        assert shown == [cam.METHOD_LABELS[m] for m in ("gradcam", "gradcam++", "xgradcam", "layercam")]
    if view == "Compare layers":
        picked = at.multiselect(key="cam-compare-layers").value
        assert picked[-1] == layers[-1] and set(picked) <= set(layers) and len(picked) == min(4, len(layers))
        assert [c.split(" ")[0] for c in shown] == picked
    if view == "Confident mistakes":
        worst = metrics.top_losses(predict.predict_run(run), k=16, mistakes_only=True)
        # drawn in a 4-column grid, so read back column by column
        assert sorted(c.split(":")[0] for c in shown) == sorted(f"#{i}" for i in worst["index"])
    if view == "Feature maps":
        assert at.selectbox(key="cam-feature-layer").value == "features.3"  # the main view's layer
        assert at.slider(key="cam-feature-count").value == 16
        assert len(shown) == 1 and shown[0].startswith("features.3: channels [")
    if view == "Filters":
        name, conv = features.first_conv(model)
        k = "×".join(map(str, conv.kernel_size))
        assert shown == [f"{name}: {conv.out_channels} filters of {k}"]
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
    from cnndash.training.loops import TrainConfig, train

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


def test_uploads_are_decoded_or_refused_with_a_message(runs_dir):
    at = open_page()
    at.radio(key="cam-source").set_value("Upload").run()
    assert any("Upload an image" in i.value for i in at.info)
    uploader = at.get("file_uploader")[0]
    uploader.set_value(("broken.png", b"not an image", "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("broken.png" in e.value and "not an image" in e.value for e in at.error)
    buffer = io.BytesIO()
    Image.new("RGBA", (40, 30), (255, 0, 0, 128)).save(buffer, format="PNG")
    at.get("file_uploader")[0].set_value(("my shape.png", buffer.getvalue(), "image/png")).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert captions(at)[0].startswith("What the model sees (my shape.png, ")
    assert not any("True class" in m.value for m in at.markdown)  # an upload has no label
