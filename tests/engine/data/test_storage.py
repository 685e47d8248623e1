"""Stored data you can trust (issue 22): one test per defect of the datasets' rows, with real files, real
processes and real trained runs. Each failed on the store before it (folders per name, versions as folders
of hard links, a quota that walked the folder)."""

from __future__ import annotations

import csv
import io
import json
import multiprocessing
import os
import signal
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnndash.cli import main
from cnndash.data import (
    DATA_QUOTA_ENV,
    MIN_FREE_ENV,
    DatasetError,
    catalog,
    dataset_report,
    dataset_revision,
    delete_dataset,
    import_dataset_zip,
    list_datasets,
    load_dataset,
    quota_used,
    replace_dataset_zip,
    startup,
    versions,
)
from cnndash.data.contents import measure
from cnndash.evaluate.label_issues import LabelIssues, run_label_issues, val_paths
from cnndash.evaluate.predict import predict_run
from cnndash.paths import runs_dir
from cnndash.runs import delete_run, load_run
from cnndash.training.loops import TrainConfig, train


def noise_zip(path: Path, counts: dict[str, int], size: int = 8, seed: int = 0) -> Path:
    """An image-folder zip of random PNGs (``size`` px: 256 px ≈ 197 KB each, incompressible)."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w") as archive:
        for cls, n in counts.items():
            for i in range(n):
                png = path.with_suffix(".png")
                Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(png)
                archive.write(png, f"{cls}/{i}.png")
    return path


def ledger_matches_disk(data_dir: Path | None = None) -> None:
    """The quota ledger counts exactly the bytes the registered contents hold, and nothing else is stored."""
    conn = catalog.db(data_dir)
    rows = conn.execute("SELECT folder, bytes FROM contents").fetchall()
    root = catalog.data_root(data_dir)
    assert all(measure(root / folder)[0] == size for folder, size in rows)
    assert quota_used(data_dir) == sum(size for _, size in rows)
    folder = catalog.contents_dir(data_dir)
    stored = {p.name for p in folder.iterdir()} - {catalog.OWNERS_DIR} if folder.is_dir() else set()
    assert stored == {Path(folder).name for folder, _ in rows if folder.startswith("contents/")}


# --- "Replace it" loses both datasets ----------------------------------------------------------------


def test_replace_holds_the_old_dataset_or_the_new_one_whatever_the_quota_or_disk(tmp_path, monkeypatch):
    old = noise_zip(tmp_path / "old.zip", {"cat": 2, "dog": 1}, size=256)  # ~0.6 MB
    new = noise_zip(tmp_path / "new.zip", {"x": 5, "y": 4}, size=256, seed=1)  # ~1.8 MB
    monkeypatch.setenv(DATA_QUOTA_ENV, "3")
    import_dataset_zip(old, "pets")
    report = replace_dataset_zip(new, "pets")  # the old code imported twice next to the old one: both lost
    assert report.name == "pets" and list_datasets() == ["pets"]
    assert dataset_report("pets").counts == {"x": 5, "y": 4}
    ledger_matches_disk()  # the old content is freed once nothing refers to it

    monkeypatch.setenv(DATA_QUOTA_ENV, "2")  # no room for the old zip next to the new dataset
    with pytest.raises(DatasetError, match="quota of 2 MiB"):
        replace_dataset_zip(old, "pets")
    monkeypatch.setenv(DATA_QUOTA_ENV, "100")
    monkeypatch.setenv(MIN_FREE_ENV, str(10**9))  # the disk is "full"
    with pytest.raises(DatasetError, match="free disk space"):
        replace_dataset_zip(old, "pets")
    monkeypatch.delenv(MIN_FREE_ENV)
    assert list_datasets() == ["pets"] and dataset_report("pets").counts == {"x": 5, "y": 4}
    assert len(load_dataset("pets").train) + len(load_dataset("pets").val) == 9
    ledger_matches_disk()


def _replace_forever(zip_path: str, data_dir: str) -> None:
    os.environ["CNNDASH_DATA_DIR"] = data_dir
    while True:
        replace_dataset_zip(zip_path, "pets")


def test_a_replace_killed_at_any_instant_leaves_one_whole_dataset(tmp_path):
    """kill -9 a process that replaces the dataset in a loop, at 12 moments: the name always holds one of
    the two datasets, complete, and a sweep leaves no staging folder, no reservation, no orphan."""
    zips = [noise_zip(tmp_path / f"{k}.zip", {"a": 20, "b": 20}, size=24, seed=k) for k in range(2)]
    data = tmp_path / "data"
    import_dataset_zip(zips[0], "pets", data_dir=data)
    expected = [{p.name: p.read_bytes() for p in _images(load_dataset("pets", data_dir=data).root)}]
    replace_dataset_zip(zips[1], "pets", data_dir=data)
    expected.append({p.name: p.read_bytes() for p in _images(load_dataset("pets", data_dir=data).root)})
    context = multiprocessing.get_context("fork")
    for delay in np.linspace(0.05, 0.6, 12):
        worker = context.Process(target=_replace_forever, args=(str(zips[len(expected) % 2]), str(data)))
        worker.start()
        time.sleep(float(delay))
        worker.kill()  # through the handle of the process this test started
        worker.join()
        assert worker.exitcode == -signal.SIGKILL
        startup.sweep(data)
        assert list_datasets(data) == ["pets"]
        held = {p.name: p.read_bytes() for p in _images(load_dataset("pets", data_dir=data).root)}
        assert held in expected
        ledger_matches_disk(data)
        assert catalog.db(data).execute("SELECT count(*) FROM reservations").fetchone()[0] == 0


def _images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.png") if not p.name.startswith("."))


# --- two edits of one version: one silently lost ------------------------------------------------------


def _relabel_all(name: str, paths: list[str], to: str, data_dir: str) -> None:
    for path in paths:
        versions.relabel(name, path, to, data_dir=Path(data_dir))


def test_edits_from_several_processes_at_once_are_all_applied_one_step_each(tmp_path):
    data = tmp_path / "data"
    import_dataset_zip(noise_zip(tmp_path / "p.zip", {"cat": 12, "dog": 12, "fox": 4}), "pets", data_dir=data)
    name = versions.create_version("pets", data_dir=data)
    jobs = [[f"cat/{i}.png" for i in range(k, 12, 4)] for k in range(4)]  # 4 processes, 3 images each
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_relabel_all, args=(name, job, "fox", str(data))) for job in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 4
    files = versions.dataset_files(name, data_dir=data).set_index("path")["class"]
    assert all(files[f"cat/{i}.png"] == "fox" for i in range(12))  # the old code lost some of them
    record = versions.read_version(name, data_dir=data)
    assert len(record.steps) == 12 and sorted(s[0]["origin"] for s in record.steps) == sorted(
        f"cat/{i}.png" for i in range(12)
    )


# --- a run's results go stale when its dataset is edited ----------------------------------------------


def test_a_run_keeps_the_content_it_trained_on_whatever_happens_to_its_dataset(tmp_path):
    data_zip = noise_zip(tmp_path / "p.zip", {"cat": 10, "dog": 10, "fox": 10}, size=12)
    import_dataset_zip(data_zip, "pets")
    version = versions.create_version("pets", "pets-v")
    versions.relabel(version, "cat/0.png", "dog")
    run_dir = runs_dir() / "run"  # in the runs folder: runs are deleted by name
    config = TrainConfig(dataset=version, model="lenet", epochs=1, image_size=16, batch_size=8,
                         tensorboard=False, threads=1)  # fmt: skip
    train(config, run_dir)
    run = load_run(run_dir)
    assert run.dataset_info["dataset_ref"]["kind"] == "version"
    before = predict_run(run)
    paths, issues = val_paths(run), run_label_issues(run).frame()
    pixels = [np.asarray(run.dataset().val[i][0]) for i in range(len(paths))]

    # Edit the version hard (the old code's gallery then showed other images), then replace its upload.
    versions.merge_classes(version, ["cat", "dog"], "pet")
    versions.remove(version, "fox/1.png")
    replace_dataset_zip(noise_zip(tmp_path / "q.zip", {"a": 3, "b": 3}, seed=9), "pets")
    again = load_run(run_dir)
    after = predict_run(again, use_cache=False)
    assert np.array_equal(before.logits, after.logits) and np.array_equal(before.targets, after.targets)
    assert val_paths(again) == paths and run_label_issues(again).frame().equals(issues)
    root = again.dataset().root
    for path, image in zip(paths, pixels, strict=True):  # every path still names the image predicted
        assert np.array_equal(np.asarray(Image.open(root / path).convert("RGB")), image)

    used = quota_used()
    delete_dataset(version)  # the run's pin keeps the old upload's files
    assert np.array_equal(predict_run(again, use_cache=False).logits, before.logits)
    delete_run("run")
    assert quota_used() < used  # released: the replaced upload's content is gone
    ledger_matches_disk()


def test_dataset_revision_changes_exactly_when_a_name_changes_meaning(tmp_path):
    import_dataset_zip(noise_zip(tmp_path / "p.zip", {"cat": 3, "dog": 3}), "pets")
    first = dataset_revision("pets")
    assert dataset_revision("pets") == first and dataset_revision("digits") == dataset_revision("digits")
    version = versions.create_version("pets")
    states = [dataset_revision(version)]
    versions.relabel(version, "cat/0.png", "dog")
    states.append(dataset_revision(version))
    versions.undo(version)
    states.append(dataset_revision(version))
    assert len(set(states)) == 3  # an undo is a new state for caches (the files are the same, but safe)
    replace_dataset_zip(noise_zip(tmp_path / "q.zip", {"a": 3, "b": 3}, seed=1), "pets")
    assert dataset_revision("pets") != first and dataset_revision(version) == states[-1]


# --- quota counts each hard link again; versions and K-fold folders not bounded ------------------------


def test_versions_cost_no_quota_and_the_ledger_counts_each_stored_file_once(tmp_path, monkeypatch):
    import_dataset_zip(noise_zip(tmp_path / "p.zip", {"a": 60, "b": 60}, size=48), "pets")
    stored = quota_used()
    for k in range(6):
        versions.create_version("pets", f"pets-v{k}")
    assert quota_used() == stored  # the old quota counted 7 copies: 6 versions blocked a small import
    monkeypatch.setenv(DATA_QUOTA_ENV, str(2 * stored // 2**20 + 1))
    assert import_dataset_zip(noise_zip(tmp_path / "s.zip", {"x": 2, "y": 2}), "small").num_images == 4
    ledger_matches_disk()


# --- a version's base can be deleted -------------------------------------------------------------------


def test_a_dataset_with_versions_cannot_be_deleted_and_its_versions_keep_working(tmp_path, capsys):
    import_dataset_zip(noise_zip(tmp_path / "p.zip", {"cat": 3, "dog": 3}), "pets")
    v1, v2 = versions.create_version("pets", "v1"), versions.create_version("pets", "v2")
    versions.relabel(v1, "cat/0.png", "dog")
    assert main(["data", "delete", "pets"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "v1" in err and "v2" in err
    versions.undo(v1)  # the old code: "Unknown dataset 'pets'"
    assert versions.diff("pets", v1).empty
    delete_dataset(v1)
    delete_dataset(v2)
    assert main(["data", "delete", "pets"]) == 0 and list_datasets() == []
    ledger_matches_disk()


# --- version edits O(N) per moved image, replayed on every rerun ----------------------------------------


def _statements(action) -> list[str]:
    conn = catalog.db()
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return seen


@pytest.mark.parametrize("edit", ["relabel", "remove"])
def test_an_edit_costs_the_images_it_changes_and_reading_a_version_replays_nothing(edit):
    small, large = versions.create_version("shapes:count=60,size=16"), versions.create_version("digits")
    for name in (small, large):  # many steps already: none of them may be read again
        for i in range(3):
            versions.relabel(
                name, versions.dataset_files(name)["path"][i], "2" if name == large else "circle"
            )

    def one_edit(name: str) -> int:
        path = versions.dataset_files(name)["path"].iloc[-1]
        to = "0" if name == large else "square"
        return len(_statements(lambda: versions.edit_version(name, [{"op": edit, "path": path, "to": to}])))

    assert one_edit(small) == one_edit(large) < 40  # the same work for 60 or 1797 images
    loading = _statements(lambda: load_dataset(large))
    assert not any("steps" in s or "step_changes" in s for s in loading)


# --- kill -9 leftovers of imports and the old layout ----------------------------------------------------


def _import_forever(zip_path: str, data_dir: str) -> None:
    os.environ["CNNDASH_DATA_DIR"] = data_dir
    for k in range(10**6):
        import_dataset_zip(zip_path, f"k{k}")


def test_killed_imports_leave_nothing_listed_half_and_a_sweep_leaves_no_orphan(tmp_path):
    data = tmp_path / "data"
    zip_path = noise_zip(tmp_path / "k.zip", {"a": 30, "b": 30}, size=32)
    context = multiprocessing.get_context("fork")
    for delay in (0.05, 0.15, 0.3, 0.45, 0.6):
        worker = context.Process(target=_import_forever, args=(str(zip_path), str(data)))
        worker.start()
        time.sleep(delay)
        worker.kill()
        worker.join()
        for name in list_datasets(data):  # complete, or not listed (the old code listed empty folders)
            assert dataset_report(name, data_dir=data).counts == {"a": 30, "b": 30}
    startup.sweep(data)
    ledger_matches_disk(data)
    assert catalog.db(data).execute("SELECT count(*) FROM reservations").fetchone()[0] == 0
    assert not list(data.glob(".import-*")) and not (data / "datasets").exists()


def test_the_old_layout_is_adopted_and_its_leftovers_swept(tmp_path):
    """A data folder as the old code left it: uploads, a version as a folder of hard links, killed
    imports' and edits' leftovers, K-fold folders, the zip cache."""
    data = tmp_path / "old"
    pets = data / "datasets" / "pets"
    with zipfile.ZipFile(noise_zip(tmp_path / "p.zip", {"cat": 3, "dog": 3})) as archive:
        archive.extractall(pets)
    edit = data / "datasets" / "pets-edit"
    for src in pets.rglob("*.png"):
        target = edit / (
            "dog/0~1-1.png" if src.relative_to(pets).as_posix() == "cat/0.png" else src.relative_to(pets)
        )
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(src, target)
    steps = [[{"op": "relabel", "path": "cat/0.png", "origin": "cat/0.png", "to": "dog"}]]
    (edit / startup.VERSION_RECORD).write_text(json.dumps({"parent": "pets", "base": "pets", "steps": steps}))
    leftovers = [data / "datasets" / ".staging-pets-edit-x1", data / "datasets" / "half" / ".extract-9",
                 data / "datasets" / "empty", data / "label-issues" / "r" / "folds" / "fold-1",
                 data / "cache" / "zips" / "abc"]  # fmt: skip
    for folder in leftovers:
        folder.mkdir(parents=True)
    (data / ".import-abc.zip").write_bytes(b"PK")

    assert list_datasets(data) == ["pets", "pets-edit"]
    files = versions.dataset_files("pets-edit", data_dir=data).set_index("path")["class"]
    assert files["cat/0.png"] == "dog" and (files == "dog").sum() == 4
    assert versions.undo("pets-edit", data_dir=data) == steps[0]
    assert (
        not edit.exists()
        and not any(p.exists() for p in leftovers)
        and not (data / ".import-abc.zip").exists()
    )
    assert pets.is_dir() and quota_used(data) == measure(pets)[0]  # adopted where it is, counted once
    with pytest.raises(DatasetError, match="pets-edit"):
        delete_dataset("pets", data_dir=data)
    ledger_matches_disk(data)


# --- CSV formula injection, data files, import --replace -------------------------------------------------

FORMULA = '=HYPERLINK("evil.example")'


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_cli_files_diff_and_label_issues_write_names_as_text(tmp_path, capsys):
    zip_path = noise_zip(tmp_path / "f.zip", {FORMULA: 3, "plain": 3})
    assert main(["data", "import", str(zip_path), "--name", "f"]) == 0
    version = versions.create_version("f")
    versions.relabel(version, "plain/0.png", FORMULA)
    capsys.readouterr()
    assert main(["data", "files", version]) == 0
    files = _cells(capsys.readouterr().out)
    assert files[:2] == ["path", "class"] and f"'{FORMULA}" in files
    assert main(["data", "diff", "f", version]) == 0
    diff = _cells(capsys.readouterr().out)
    assert f"'{FORMULA}" in diff
    issues = LabelIssues("f", [FORMULA, "b"], [f"{FORMULA}/0.png"], np.array([0]), np.array([[0.1, 0.9]]), [])
    written = _cells(issues.write(tmp_path / "out").read_text())
    for cells in (files, diff, written):  # no cell a spreadsheet would run (the old code wrote them as is)
        assert not any(cell.startswith(("=", "+", "@")) for cell in cells)
    assert main(["data", "files", version, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"path": "plain/0.png", "class": FORMULA} in rows  # JSON is data, not a spreadsheet: as is


def test_cli_import_replace_is_one_step(tmp_path, capsys):
    first, second = (
        noise_zip(tmp_path / "a.zip", {"a": 2, "b": 2}),
        noise_zip(tmp_path / "b.zip", {"c": 2, "d": 2}),
    )
    assert main(["data", "import", str(first), "--name", "set"]) == 0
    assert main(["data", "import", str(second), "--name", "set", "--replace"]) == 0
    assert capsys.readouterr().out.split() == ["set", "set"]
    assert dataset_report("set").classes == ["c", "d"] and list_datasets() == ["set"]
    assert main(["data", "import", str(tmp_path / "nope.zip"), "--name", "set", "--replace"]) == 2
    assert dataset_report("set").classes == ["c", "d"]
