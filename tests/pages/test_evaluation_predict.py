"""Evaluation → Predict (many files, zips, flags, CSV) and the export panel, through AppTest."""

from __future__ import annotations

import io
import json
import shutil
import zipfile

import numpy as np
import pytest
from PIL import Image

from cnndash.evaluate import predict, predict_files
from cnndash.preprocess import open_image
from cnndash.runs import load_run
from tests.pages.test_pages import run_page


@pytest.fixture
def runs_home(tiny_run, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tiny")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    return runs


def _predict_tab():
    at = run_page("pages/evaluation.py")
    at.session_state["eval-tab"] = "Predict"
    return at.run()


def _png(color, size=(40, 30), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format="PNG")
    return buffer.getvalue()


def _table(at):
    return next(df.value for df in at.dataframe if "confidence" in getattr(df.value, "columns", []))


def test_many_files_and_a_zip_in_one_sortable_table_with_flags_and_csv(runs_home):
    at = _predict_tab()
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("more/blue.png", _png((20, 20, 220)))
        zf.writestr("more/gray.png", _png(128, mode="L"))
    uploads = [
        ("red.png", _png((200, 30, 30)), "image/png"),
        ("more.zip", archive.getvalue(), "application/zip"),
    ]
    at.get("file_uploader")[0].set_value(uploads)
    at.number_input(key="eval-topk").set_value(2)
    at.slider(key="eval-threshold").set_value(0.99).run()
    assert not at.exception, [e.value for e in at.exception]
    table = _table(at)
    assert list(table["file"]) == ["red.png", "more.zip/more/blue.png", "more.zip/more/gray.png"]
    assert list(table.columns) == ["image", "file", "predicted", "confidence", "#2", "flag"]
    assert all(uri.startswith("data:image/png;base64,") for uri in table["image"])
    # The page's numbers are the app's prediction (predict_images on the same decoded files).
    images = [
        open_image(_png((200, 30, 30))),
        open_image(_png((20, 20, 220))),
        open_image(_png(128, mode="L")),
    ]
    probs = predict.predict_images(runs_home / "tiny", images)
    classes = load_run(runs_home / "tiny").classes
    np.testing.assert_allclose(table["confidence"], probs.max(axis=1), atol=1e-6)
    assert list(table["predicted"]) == [classes[i] for i in probs.argmax(axis=1)]
    # Threshold 0.99: everything is low confidence; the grayscale file is also a channel mismatch.
    assert all("low confidence" in flag for flag in table["flag"])
    assert "grayscale image, colour model" in table["flag"].iloc[2]
    assert any("flagged" in w.value for w in at.warning)
    # Sorting by confidence.
    at.selectbox(key="eval-predict-order").set_value("least confident first").run()
    assert list(_table(at)["confidence"]) == sorted(probs.max(axis=1).astype(float))
    # The CSV download is the CLI's format.
    button = next(b for b in at.get("download_button") if b.proto.id.endswith("eval-predictions-csv"))
    assert button.proto.label == "Download CSV"
    expected = predict_files.predictions_csv(list(table["file"].sort_index()), probs, classes, 2)
    assert expected.splitlines()[0] == "path,predicted,probability,top2,p2"


def test_export_panel_builds_the_bundle_and_shows_the_card(runs_home):
    at = _predict_tab()
    assert not at.exception
    build = at.button(key="eval-export-build-tiny")
    assert at.multiselect(key="eval-export-formats-tiny").value == ["torchscript", "onnx"]
    at.multiselect(key="eval-export-formats-tiny").set_value(["torchscript", "onnx", "onnx-int8"])
    build.click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    bundle = runs_home / "tiny" / "export"
    card = json.loads((bundle / "model.json").read_text())
    assert {"model.onnx", "model.int8.onnx", "model.torchscript.pt", "predict.py"} <= {
        p.name for p in bundle.iterdir()
    }
    ids = [b.proto.id for b in at.get("download_button")]
    assert any(i.endswith("eval-export-download-tiny") for i in ids)
    variants = next(df.value for df in at.dataframe if "variant" in getattr(df.value, "columns", []))
    assert list(variants["variant"]) == ["onnx", "onnx-int8"]
    assert {m.label: m.value for m in at.metric}["Model"] == card["model"] == "lenet"


def test_export_panel_error_is_a_message(runs_home):
    at = _predict_tab()
    at.multiselect(key="eval-export-formats-tiny").set_value(["onnx-int8"])
    at.button(key="eval-export-build-tiny").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("add 'onnx'" in e.value for e in at.error)


def test_no_column_is_cut_and_the_csv_keeps_the_flag(runs_home):
    """Issue 23, point 9: Predict's flag column was cut ("low confid…"). (The CSV's flag column:
    tests/engine/test_tables.py and the browser test test_hostile_names.py.)"""
    at = _predict_tab()
    at.get("file_uploader")[0].set_value([("=cmd.png", _png(128, mode="L"), "image/png")])
    at.slider(key="eval-threshold").set_value(0.99).run()
    assert not at.exception, [e.value for e in at.exception]
    element = next(df for df in at.dataframe if "confidence" in getattr(df.value, "columns", []))
    columns = json.loads(element.proto.columns)
    assert columns["flag"]["width"] == "large" and columns["file"]["width"] == "medium"
    assert list(element.proto.column_order)[:5] == ["image", "file", "predicted", "confidence", "flag"]
