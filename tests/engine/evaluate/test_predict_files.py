"""``python -m cnndash predict`` and ``export``: images, folders and zips in, CSV out; bad input exits 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash.cli import main
from cnndash.evaluate import predict, predict_files
from cnndash.preprocess import open_image
from cnndash.runs import load_run
from tests.conftest import ROOT


def _images(folder: Path, count: int = 4) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    paths = []
    for i in range(count):
        path = folder / f"img{i}.png"
        Image.fromarray(rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def _rows(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


def _cli(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cnndash", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_predict_files_folders_and_zips_agree_with_the_app(tiny_run, tmp_path, capsys):
    files = _images(tmp_path / "a")
    nested = _images(tmp_path / "b" / "deeper", 2)
    archive = tmp_path / "c.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in files[:2]:
            zf.write(path, f"inside/{path.name}")
        zf.writestr("__MACOSX/inside/._img0.png", b"resource fork")
        zf.writestr("notes.txt", b"not an image")
    assert main(["predict", "--run", str(tiny_run), str(files[3]), str(tmp_path / "b"), str(archive)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r["path"] for r in rows] == [
        str(files[3]),
        *[str(p) for p in nested],
        f"{archive}/inside/img0.png",
        f"{archive}/inside/img1.png",
    ]
    images = [open_image(p.read_bytes()) for p in [files[3], *nested, files[0], files[1]]]
    app = predict.predict_images(tiny_run, images)
    classes = load_run(tiny_run).classes
    for row, probs in zip(rows, app, strict=True):
        assert row["predicted"] == classes[int(probs.argmax())]
        assert float(row["probability"]) == pytest.approx(float(probs.max()), abs=1e-6)


def test_top_k_adds_ranked_columns(tiny_run, tmp_path, capsys):
    files = _images(tmp_path / "a", 2)
    assert main(["predict", "--run", str(tiny_run), *map(str, files), "--top-k", "3"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "path,predicted,probability,top2,p2,top3,p3"
    for row in _rows(text):
        probs = [float(row["probability"]), float(row["p2"]), float(row["p3"])]
        assert probs == sorted(probs, reverse=True) and sum(probs) == pytest.approx(1.0, abs=1e-5)
        assert len({row["predicted"], row["top2"], row["top3"]}) == 3


def test_predictions_csv_is_the_bundle_format():
    text = predict_files.predictions_csv(
        ["x.png", "a,b.png"], np.array([[0.2, 0.8], [0.6, 0.4]]), ["cat", "dog"], 5
    )
    assert text == "path,predicted,probability,top2,p2\nx.png,dog,0.800000,cat,0.200000\n" + (
        '"a,b.png",cat,0.600000,dog,0.400000\n'
    )


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "does not exist"),
        ("empty_dir", "contains no images"),
        ("undecodable", "is not an image"),
        ("empty_zip", "contains no images"),
        ("no_checkpoint", "no best.pt"),
        ("bad_top_k", "--top-k must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tiny_run, tmp_path, capsys, setup, message):
    run = tiny_run
    target = tmp_path / "x.png"
    extra: list[str] = []
    if setup == "empty_dir":
        target = tmp_path / "empty"
        target.mkdir()
        (target / "readme.txt").write_text("no images here")
    elif setup == "undecodable":
        target.write_bytes(b"\x89PNG but not really")
    elif setup == "empty_zip":
        target = tmp_path / "e.zip"
        with zipfile.ZipFile(target, "w") as zf:
            zf.writestr("a.txt", "x")
    elif setup == "no_checkpoint":
        _images(tmp_path, 1)
        target = tmp_path / "img0.png"
        run = tmp_path / "run"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"dataset": "shapes", "model": "lenet"}))
    elif setup == "bad_top_k":
        _images(tmp_path, 1)
        target, extra = tmp_path / "img0.png", ["--top-k", "0"]
    capsys.readouterr()
    assert main(["predict", "--run", str(run), str(target), *extra]) == 2  # what `python -m` exits with
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err


def test_export_command_writes_the_bundle(tiny_run, tmp_path):
    done = _cli(["export", "--run", str(tiny_run), "--out", str(tmp_path / "bundle")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "bundle")
    names = {p.name for p in (tmp_path / "bundle").iterdir()}
    assert {"model.json", "model.torchscript.pt", "model.onnx", "predict.py", "README.md"} <= names
    card = json.loads((tmp_path / "bundle" / "model.json").read_text())
    assert set(card) >= {"classes", "channels", "input_size", "mean", "std", "model", "val_accuracy"}


def test_export_command_bad_input_exits_2(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"dataset": "shapes", "model": "lenet"}))
    done = _cli(["export", "--run", str(run), "--out", str(tmp_path / "b")])
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "no best.pt" in done.stderr and not (tmp_path / "b").exists()
    done = _cli(["export", "--run", str(run), "--out", str(tmp_path / "b"), "--formats", "tflite"])
    assert done.returncode == 2 and "Unknown export format 'tflite'" in done.stderr


def test_upload_sources_open_zips_in_memory(tmp_path):
    files = _images(tmp_path / "a", 2)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.write(files[0], "x/one.png")
        zf.writestr("x/.hidden.png", b"")
    sources = predict_files.upload_sources([("b.zip", buffer.getvalue()), ("two.png", files[1].read_bytes())])
    assert [s.name for s in sources] == ["b.zip/x/one.png", "two.png"]
    assert sources[0].open().size == Image.open(files[0]).size
    empty = io.BytesIO()
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("notes.txt", "x")
    with pytest.raises(ValueError, match="contains no images"):
        predict_files.upload_sources([("e.zip", empty.getvalue())])


def test_prediction_flags_low_confidence_and_channels():
    probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.95, 0.05]])
    flags = predict_files.prediction_flags(probs, ["RGB", "RGB", "L", "I;16"], channels=3, threshold=0.65)
    assert flags[0] == ""
    assert flags[1] == "low confidence (< 65%)"
    assert "grayscale image, colour model" in flags[2] and "low confidence" in flags[2]
    assert flags[3] == "grayscale image, colour model"
    gray = predict_files.prediction_flags(probs[:1], ["CMYK"], channels=1)
    assert gray == ["colour image, grayscale model"]


def test_predictions_table_ranks_the_classes_of_each_image():
    probs = np.array([[0.2, 0.5, 0.3], [0.7, 0.1, 0.2]])
    flags = ["low confidence (< 60%)", ""]
    frame = predict_files.predictions_table(["x.png", "y.png"], probs, ["cat", "dog", "fox"], 3, flags)
    assert list(frame.columns) == ["file", "predicted", "confidence", "#2", "#3", "flag"]
    assert frame["predicted"].tolist() == ["dog", "cat"]
    assert frame["confidence"].tolist() == [0.5, 0.7]
    assert frame["#2"].tolist() == ["fox (30.0%)", "fox (20.0%)"]
    assert frame["#3"].tolist() == ["cat (20.0%)", "dog (10.0%)"]
    assert frame["flag"].tolist() == flags
    assert list(predict_files.predictions_table(["x.png"], probs[:1], ["a", "b", "c"], 1, [""]).columns) == [
        "file",
        "predicted",
        "confidence",
        "flag",
    ]


def _zip_of(path: Path, image: Path, count: int) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for i in range(count):
            zf.write(image, f"c{i % 2}/{i:04d}.png")
    return path


def test_a_zip_is_opened_once_and_each_member_read_once(tmp_path, monkeypatch):
    # The defect: every member re-opened the zip and parsed its whole directory (32,000 entries: ~3 h).
    archive = _zip_of(tmp_path / "many.zip", _images(tmp_path / "src", 1)[0], 300)
    opened = []
    real = zipfile.ZipFile

    class Counting(real):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(predict_files.zipfile, "ZipFile", Counting)
    sources = predict_files.image_sources([archive])
    assert len(sources) == 300 and [s.open().size for s in sources[:3]] == [(30, 20)] * 3
    for source in sources:
        source.read()
    assert len(opened) == 1


def test_a_zip_beyond_the_import_limits_is_refused_before_it_is_read(tmp_path, monkeypatch, capsys):
    image = _images(tmp_path / "src", 1)[0]
    monkeypatch.setattr(predict_files, "MAX_ZIP_FILES", 50)  # data.limits.MAX_ZIP_FILES, made small
    with pytest.raises(ValueError, match="has 51 entries; at most 50"):
        predict_files.image_sources([_zip_of(tmp_path / "a.zip", image, 51)])
    monkeypatch.setattr(predict_files, "MAX_ZIP_ENTRY_BYTES", image.stat().st_size - 1)
    with pytest.raises(ValueError, match="larger than"):
        predict_files.image_sources([_zip_of(tmp_path / "b.zip", image, 2)])


def test_csv_cells_that_spreadsheets_would_run_are_written_as_text():
    names = ['=HYPERLINK("https://evil.example","open").png', "@SUM(A1).png", "-1.png", "ok.png"]
    text = predict_files.predictions_csv(names, np.eye(4, 2) * 0.5 + 0.25, ["+cats", "dogs"], top_k=2)
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert [row[0] for row in rows] == ["'" + names[0], "'" + names[1], "'-1.png", "ok.png"]
    assert {row[1] for row in rows} | {row[3] for row in rows} == {"'+cats", "dogs"}
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row[:2])
