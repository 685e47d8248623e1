"""Dataset versions: edits recorded and reversible, files shared with the parent and never touched."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash.cli import main
from cnndash.data import DatasetError, import_dataset, load_dataset, quota_used, versions


def _snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: its bytes and modification time (ns)."""
    return {
        p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def _upload(tmp_path: Path) -> str:
    rng = np.random.default_rng(0)
    zip_path = tmp_path / "pets.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        for cls in ("cat", "dog", "fox"):
            for i in range(4):
                png = tmp_path / "x.png"
                Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(png)
                archive.write(png, f"{cls}/{i}.png")
    return import_dataset(zip_path, "pets").name


def test_edit_diff_undo_round_trip_leaves_parent_untouched(tmp_path):
    parent = _upload(tmp_path)
    parent_root = load_dataset(parent).root
    before, used = _snapshot(parent_root), quota_used()
    name = versions.create_version(parent)
    assert name == "pets-edit"
    assert versions.diff(parent, name).empty

    versions.relabel(name, "cat/0.png", "dog")  # dog/0.png exists: the moved image gets a free name
    versions.remove(name, "fox/3.png")
    versions.edit_version(
        name, [{"op": "relabel", "path": "cat/1.png", "to": "fox"}, {"op": "remove", "path": "dog/2.png"}]
    )
    changes = versions.diff(parent, name)
    assert sorted(changes["change"]) == ["relabelled", "relabelled", "removed", "removed"]
    moved = changes.set_index("origin").loc["cat/0.png"]
    assert moved["class_b"] == "dog" and moved["path_b"].startswith("dog/") and moved["path_b"] != "dog/0.png"
    imageset = load_dataset(name)  # the version is an ordinary dataset
    assert len(imageset.train) + len(imageset.val) == 10
    # Shared storage: the version's files are the parent's, and it costs nothing against the quota.
    assert imageset.root == parent_root and quota_used() == used
    assert {f.relative_to(parent_root).as_posix() for f in imageset.train.files + imageset.val.files} == {
        f"{c}/{i}.png" for c in ("cat", "dog", "fox") for i in range(4)
    } - {"fox/3.png", "dog/2.png"}

    assert len(versions.undo(name)) == 2  # one step: both edits of the batch
    assert sorted(versions.diff(parent, name)["change"]) == ["relabelled", "removed"]
    versions.undo(name)
    versions.undo(name)
    assert versions.diff(parent, name).empty
    with pytest.raises(DatasetError, match="no edits"):
        versions.undo(name)
    assert _snapshot(parent_root) == before  # bytes and mtimes of every parent file unchanged


def test_merge_rename_and_versions_of_versions(tmp_path):
    parent = _upload(tmp_path)
    v1 = versions.create_version(parent, "v1")
    versions.merge_classes(v1, ["dog", "fox"], "canid")
    assert load_dataset(v1).classes == ["canid", "cat"]
    versions.rename_class(v1, "cat", "feline")
    v2 = versions.create_version(v1)  # starts with v1's edits, which it cannot undo
    assert load_dataset(v2).classes == ["canid", "feline"]
    with pytest.raises(DatasetError, match="no edits"):
        versions.undo(v2)
    versions.relabel(v2, "feline/1.png", "canid")
    diff = versions.diff(v1, v2)
    assert list(diff["origin"]) == ["cat/1.png"]
    with pytest.raises(DatasetError, match="fewer than 2 classes"):
        versions.merge_classes(v2, ["canid", "feline"], "animal")
    with pytest.raises(DatasetError, match="classes are"):
        versions.relabel(v2, "canid/0.png", "unicorn")
    with pytest.raises(DatasetError, match="not allowed"):
        versions.rename_class(v2, "canid", "../x")
    assert {r.name for r in versions.list_versions()} == {"v1", v2} and v2 == "v1-edit"


def test_version_of_builtin_uses_builtin_paths_and_cli(capsys):
    assert main(["data", "version", "digits"]) == 0
    name = capsys.readouterr().out.strip()
    assert name == "digits-edit"
    assert main(["data", "relabel", name, "3/3.png", "8"]) == 0
    assert main(["data", "diff", "digits", name]) == 0
    out = capsys.readouterr().out
    assert "relabelled,3/3.png,3/3.png,8/3.png,3,8" in out
    assert main(["data", "undo", name]) == 0
    assert main(["data", "merge", name, "1", "7", "--into", "1or7"]) == 0
    assert main(["data", "rename", name, "0", "zero"]) == 0
    assert load_dataset(name).classes == ["1or7", "2", "3", "4", "5", "6", "8", "9", "zero"]
    assert main(["data", "versions", "--json"]) == 0
    assert '"steps": 2' in capsys.readouterr().out
    assert main(["data", "relabel", name, "3/99999.png", "8"]) == 2
    assert "No image" in capsys.readouterr().err
