"""`python -m cnndash data …` and `runs …`: the same engine calls as the pages, one-line errors, exit 2."""

from __future__ import annotations

import json
import zipfile

import pytest
from PIL import Image

from cnndash.cli import main
from cnndash.runs import RunWriter, write_status


def make_folder(root, classes=("cats", "dogs"), per_class=4):
    for index, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (16, 16), (40 * index, 10 * i, 200)).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def homes(tmp_path, monkeypatch):
    monkeypatch.setenv("CNNDASH_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(tmp_path / "runs"))
    return tmp_path


def test_data_import_from_a_folder_and_a_zip_list_and_delete(homes, capsys):
    folder = make_folder(homes / "pets")
    assert main(["data", "import", str(folder), "--name", "pets"]) == 0
    assert capsys.readouterr().out.strip() == "pets"
    archive = homes / "pets.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    assert main(["data", "import", str(archive), "--name", "pets"]) == 0
    assert capsys.readouterr().out.strip() == "pets-2"  # a taken name gets a free one derived from it
    assert main(["data", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(row["name"], row["classes"], row["images"]) for row in listed] == [
        ("pets", ["cats", "dogs"], 8),
        ("pets-2", ["cats", "dogs"], 8),
    ]
    assert main(["data", "delete", "pets"]) == 0
    capsys.readouterr()
    assert main(["data", "list"]) == 0
    assert capsys.readouterr().out.split() == ["pets-2"]


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (["data", "import", "nowhere.zip"], "neither a zip file nor a folder"),
        (["data", "delete", "ghost"], "No uploaded dataset named 'ghost'"),
        (["data", "import", "x.zip", "--name", "../evil"], "not allowed"),
        (["runs", "delete", "ghost"], "No run 'ghost'"),
    ],
)
def test_bad_requests_are_one_line_and_exit_2(homes, capsys, args, culprit):
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and culprit in err and "\n" not in err


def test_runs_lists_every_state_and_deletes_all_but_a_training_one(tiny_run, homes, capsys):
    import shutil

    runs = homes / "runs"
    for name in ("done", "crashed", "live"):
        shutil.copytree(tiny_run, runs / name)
    (runs / "half-written").mkdir()
    write_status(runs / "crashed", "running")  # no process trains it: interrupted
    with RunWriter(runs / "live").training():
        write_status(runs / "live", "running")
        assert main(["runs", "--json"]) == 0
        rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
        assert {name: row["status"] for name, row in rows.items()} == {
            "done": "finished",
            "crashed": "interrupted",
            "live": "running",
            "half-written": "broken",
        }
        assert rows["done"]["model"] == "lenet" and 0 <= rows["done"]["val_accuracy"] <= 1
        assert main(["runs", "delete", "live"]) == 2
        assert "still training" in capsys.readouterr().err
    for name in ("crashed", "half-written", "live"):
        assert main(["runs", "delete", name]) == 0
    assert sorted(p.name for p in runs.iterdir()) == ["done"]
