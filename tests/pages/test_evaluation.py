"""Evaluation page through the real app (AppTest) on a real tiny trained run."""

from __future__ import annotations

import io
import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from cnndash.evaluate import metrics, predict
from cnndash.runs import RunWriter, write_status
from cnndash.text import plural
from tests.conftest import plotly_array
from tests.pages.test_pages import run_page


@pytest.fixture
def runs_home(tiny_run, tmp_path, monkeypatch):
    """A runs folder holding a private copy of the tiny run, named "tiny"; the app reads it."""
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tiny")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    return runs


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _heatmap(at) -> dict:
    """The heatmap trace of the confusion-matrix chart, as the browser receives it."""
    charts = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return next(c["data"][0] for c in charts if c["data"][0]["type"] == "heatmap")


def _open_tab(at, label: str):
    """Only the open tab runs (lazy tabs), so switch like a user clicking it."""
    at.session_state["eval-tab"] = label
    return at.run()


def test_renders_all_sections_for_a_trained_run(runs_home):
    at = run_page("pages/evaluation.py")
    _ok(at)
    assert at.title[0].value == "Evaluation"
    assert at.selectbox(key="eval-run").value == "tiny"
    pred = predict.predict_run(runs_home / "tiny")
    assert pred.from_cache  # the page computed and cached the predictions
    labels = {m.label: m.value for m in at.metric}
    assert labels["Validation images"] == str(len(pred))
    assert labels["Accuracy"] == f"{pred.accuracy:.1%}"
    assert [t.label for t in at.tabs] == [
        "Confusion matrix",
        "Report",
        "Top losses",
        "Learning curves",
        "Predict",
        "Data",
    ]

    heatmap = _heatmap(at)
    counts = metrics.confusion_matrix(pred.targets, pred.preds, len(pred.classes))
    assert heatmap["x"] == pred.classes and heatmap["y"] == pred.classes
    assert heatmap["text"] == [[str(v) for v in row] for row in counts]
    np.testing.assert_array_equal(plotly_array(heatmap["z"]), counts)
    assert at.subheader.values == ["Images of one cell", "Most confused pairs"]
    assert len(at.get("plotly_chart")) == 1  # only the open tab runs
    downloads = {b.proto.id.rsplit("-eval-", 1)[-1] for b in at.get("download_button")}
    assert downloads == {"cm-csv", "cm-png"}

    _open_tab(at, "Report")
    _ok(at)
    report = next(df.value for df in at.dataframe if "f1-score" in getattr(df.value, "columns", []))
    assert list(report.index) == [*pred.classes, "macro avg", "weighted avg"]
    assert any(c.value.startswith(f"Accuracy {pred.accuracy:.3f} on {len(pred)} ") for c in at.caption)
    assert at.subheader.values == ["Per-class accuracy"]
    bars = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][0]
    assert bars["type"] == "bar" and bars["x"] == pred.classes
    assert {b.proto.id.rsplit("-eval-", 1)[-1] for b in at.get("download_button")} == {"report-csv"}

    _open_tab(at, "Top losses")
    _ok(at)
    assert at.toggle(key="eval-losses-mistakes").value is True
    top = metrics.top_losses(pred, k=12, mistakes_only=True)
    shown = [b.key for b in at.button if b.key and b.key.startswith("eval-losses-gradcam-")]
    assert sorted(shown) == sorted(f"eval-losses-gradcam-{i}" for i in top["index"])

    _open_tab(at, "Learning curves")
    _ok(at)
    curves = json.loads(at.get("plotly_chart")[0].proto.spec)["data"]
    assert {trace["name"] for trace in curves} == {"train loss", "val loss", "train acc", "val acc"}

    _open_tab(at, "Predict")
    _ok(at)
    assert at.get("file_uploader") and at.number_input(key="eval-topk").value == 3


def test_widget_values_survive_switching_tabs(runs_home):
    at = run_page("pages/evaluation.py")
    at.radio(key="eval-normalize").set_value("by predicted class (precision)").run()
    at.selectbox(key="eval-true").set_value("circle")
    at.selectbox(key="eval-pred").set_value("circle").run()
    _open_tab(at, "Report")
    _open_tab(at, "Confusion matrix")
    _ok(at)
    assert at.radio(key="eval-normalize").value == "by predicted class (precision)"
    assert (at.selectbox(key="eval-true").value, at.selectbox(key="eval-pred").value) == ("circle", "circle")


def test_normalisation_switch_changes_the_heatmap(runs_home):
    at = run_page("pages/evaluation.py")
    pred = predict.predict_run(runs_home / "tiny")
    at.radio(key="eval-normalize").set_value("by true class (recall)").run()
    _ok(at)
    heatmap = _heatmap(at)
    expected = metrics.confusion_matrix(pred.targets, pred.preds, len(pred.classes), normalize="true")
    np.testing.assert_allclose(plotly_array(heatmap["z"]), expected)
    assert heatmap["zmax"] == 1
    np.testing.assert_allclose(plotly_array(heatmap["z"]).sum(axis=1), 1.0)

    at.radio(key="eval-normalize").set_value("by predicted class (precision)").run()
    expected = metrics.confusion_matrix(pred.targets, pred.preds, len(pred.classes), normalize="pred")
    np.testing.assert_allclose(plotly_array(_heatmap(at)["z"]), expected)


def test_selected_cell_shows_its_images(runs_home):
    at = run_page("pages/evaluation.py")
    pred = predict.predict_run(runs_home / "tiny")
    confused = metrics.most_confused(pred.targets, pred.preds, pred.classes)
    # The most confused pair is selected first.
    assert (at.selectbox(key="eval-true").value, at.selectbox(key="eval-pred").value) == (
        confused["true"].iloc[0],
        confused["predicted"].iloc[0],
    )
    for _, row in confused.iterrows():
        at.selectbox(key="eval-true").set_value(row["true"])
        at.selectbox(key="eval-pred").set_value(row["predicted"]).run()
        _ok(at)
        summary = next(m.value for m in at.markdown if "predicted as" in m.value)
        assert summary.startswith(
            f"**{plural(int(row['count']), 'image')}** of **{row['true']}**"
        )  # "1 image" too
        expected = metrics.cell_indices(pred, int(row["true_index"]), int(row["pred_index"]))[:24]
        buttons = [b.key for b in at.button if b.key and b.key.startswith("eval-cell-gradcam-")]
        assert sorted(buttons) == sorted(f"eval-cell-gradcam-{i}" for i in expected)


def test_gradcam_link_hands_over_the_image(runs_home):
    at = run_page("pages/evaluation.py")
    first = next(b for b in at.button if b.key and b.key.startswith("eval-cell-gradcam-"))
    index = int(first.key.rsplit("-", 1)[1])
    first.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Grad-CAM"  # switched pages
    state = at.session_state
    if "gradcam-image" in state:  # not consumed (yet) by the Grad-CAM page
        assert state["gradcam-image"] == {"run": "tiny", "index": index}
    else:  # the Grad-CAM page took the hand-off and selected that run and validation image
        assert (state["cam-run"], state["cam-index"]) == ("tiny", index)


def test_predict_uploaded_images(runs_home):
    at = _open_tab(run_page("pages/evaluation.py"), "Predict")
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="PNG")
    at.get("file_uploader")[0].set_value(
        [("red.png", buffer.getvalue(), "image/png"), ("broken.png", b"not an image", "image/png")]
    )
    at.number_input(key="eval-topk").set_value(2).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("broken.png" in e.value and "not an image" in e.value for e in at.error)
    tables = [df.value for df in at.dataframe if list(df.value.columns) == ["class", "probability"]]
    assert len(tables) == 1 and len(tables[0]) == 2
    assert tables[0]["probability"].is_monotonic_decreasing
    assert 0 < tables[0]["probability"].sum() <= 1 + 1e-6


def test_running_run_is_marked_and_finished_one_preselected(runs_home):
    live = runs_home / "live"
    shutil.copytree(runs_home / "tiny", live)
    newer = (runs_home / "tiny" / "config.json").stat().st_mtime + 10
    os.utime(live / "config.json", (newer, newer))
    with RunWriter(live).training():  # this process trains "live" while the page renders
        write_status(live, "running")
        at = run_page("pages/evaluation.py")
        _ok(at)
        box = at.selectbox(key="eval-run")
        assert box.value == "tiny"
        assert box.options[0].startswith("live") and "still training" in box.options[0]
        box.set_value("live").run()
        _ok(at)
        assert any("still training" in i.value for i in at.info)


def test_run_without_checkpoint_is_a_message_not_a_traceback(runs_home):
    (runs_home / "tiny" / "best.pt").unlink()
    at = run_page("pages/evaluation.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("best" in e.value and "tiny" in e.value for e in at.error)
    _open_tab(at, "Learning curves")
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 1  # the learning curves still show


def test_deleted_dataset_is_a_message_not_a_traceback(runs_home):
    config = json.loads((runs_home / "tiny" / "config.json").read_text())
    config["dataset"] = "gone-upload"
    (runs_home / "tiny" / "config.json").write_text(json.dumps(config))
    at = run_page("pages/evaluation.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("gone-upload" in e.value for e in at.error)


def test_no_runs_points_to_training():
    at = run_page("pages/evaluation.py")
    _ok(at)
    assert any("No training runs yet" in i.value for i in at.info)


@pytest.fixture
def many_class_run(tmp_path, monkeypatch):
    """A real run on an uploaded-style image folder with 22 classes (more than the 20 shown at once)."""
    from cnndash.training.loops import TrainConfig, train

    rng = np.random.default_rng(0)
    root = tmp_path / "many"
    for c in range(22):
        folder = root / f"class{c:02d}"
        folder.mkdir(parents=True)
        for i in range(5):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    runs = tmp_path / "runs"
    train(TrainConfig(dataset=str(root), model="lenet", epochs=1, seed=0), runs / "many")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    return runs / "many"


def test_many_classes_show_the_most_confused_ones(many_class_run):
    at = run_page("pages/evaluation.py")
    _ok(at)
    pred = predict.predict_run(many_class_run)
    counts = metrics.confusion_matrix(pred.targets, pred.preds, 22)
    assert at.number_input(key="eval-top-n").value == 20
    assert len(_heatmap(at)["x"]) == 20
    at.number_input(key="eval-top-n").set_value(5).run()
    _ok(at)
    keep = metrics.top_confused_classes(counts, 5)
    heatmap = _heatmap(at)
    assert heatmap["x"] == [pred.classes[i] for i in keep] == heatmap["y"]
    assert heatmap["text"] == [[str(counts[i, j]) for j in keep] for i in keep]
    cells = json.loads(at.get("plotly_chart")[0].proto.spec)["data"][1]["customdata"]
    assert [c[:2] for c in cells] == [[i, j] for i in keep for j in keep]  # original class indices


def _click_cell(at, true_index: int, pred_index: int):
    """What the browser sends when a heatmap cell is clicked (the E2E test clicks for real)."""
    point = {"customdata": [true_index, pred_index, 0, 0.0], "curve_number": 1}
    at.session_state["eval-cm-chart"] = {
        "selection": {"points": [point], "point_indices": [0], "box": [], "lasso": []}
    }
    return at.run()


def test_heatmap_click_selects_the_cell_once(runs_home):
    at = run_page("pages/evaluation.py")
    classes = predict.predict_run(runs_home / "tiny").classes
    _click_cell(at, 0, 2)
    _ok(at)
    assert (at.selectbox(key="eval-true").value, at.selectbox(key="eval-pred").value) == (
        classes[0],
        classes[2],
    )
    # Changing the selectors afterwards wins: the same (still selected) click is not re-applied.
    at.selectbox(key="eval-pred").set_value(classes[1]).run()
    assert at.selectbox(key="eval-pred").value == classes[1]
    # A cleared selection re-arms the click on the same cell.
    at.session_state["eval-cm-chart"] = {
        "selection": {"points": [], "point_indices": [], "box": [], "lasso": []}
    }
    at.run()
    _click_cell(at, 0, 2)
    assert at.selectbox(key="eval-pred").value == classes[2]


def _outlined_cell(at) -> tuple[float, float]:
    """(column, row) centre of the outline drawn on the confusion-matrix heatmap."""
    (shape,) = json.loads(at.get("plotly_chart")[0].proto.spec)["layout"]["shapes"]
    return (shape["x0"] + shape["x1"]) / 2, (shape["y0"] + shape["y1"]) / 2


def test_the_heatmap_outlines_the_clicked_or_picked_cell(runs_home):
    at = run_page("pages/evaluation.py")
    classes = predict.predict_run(runs_home / "tiny").classes
    _click_cell(at, 0, 2)
    _ok(at)
    assert _outlined_cell(at) == (2, 0)  # drawn in the same run as the click
    at.selectbox(key="eval-pred").set_value(classes[1]).run()
    assert _outlined_cell(at) == (1, 0)
