"""Label issues: K-fold training with the normal trainer, ranked by cleanlab, on known flipped labels."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from cleanlab.rank import get_label_quality_scores
from PIL import Image

from cnndash.cli import main
from cnndash.data import folds, load_dataset, versions
from cnndash.evaluate.label_issues import (
    COLUMNS,
    find_dataset_label_issues,
    rank_label_issues,
    run_label_issues,
)
from cnndash.runs import load_run
from cnndash.training.loops import TrainConfig, train

FLIP_FRACTION = 0.05
# Small and fast: LeNet on 16 px digits learns them to ~97 % in four epochs.
TEMPLATE = dict(model="lenet", epochs=4, image_size=16, tensorboard=False, threads=1)


def _flips(labels: list[int], n_classes: int, seed: int) -> dict[int, int]:
    """5 % of the images, each given another class at random: {image number: wrong class}."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(labels), round(FLIP_FRACTION * len(labels)), replace=False)
    return {int(i): int((labels[i] + rng.integers(1, n_classes)) % n_classes) for i in chosen}


def _check_found(csv: Path, truth: dict[str, str]) -> tuple[float, float]:
    """(share of the flips among the top K, share of those found with the true class suggested)."""
    frame = pd.read_csv(csv, dtype=str)
    assert list(frame.columns) == COLUMNS
    scores = frame["score"].astype(float)
    assert (np.diff(scores) <= 1e-12).all(), "most suspicious first"
    top = frame.head(len(truth))
    found = top[top["path"].isin(truth)]
    right = sum(truth[p] == s for p, s in zip(found["path"], found["suggested"], strict=True))
    return len(found) / len(truth), right / max(len(found), 1)


def test_builtin_dataset_with_flipped_labels(tmp_path):
    """digits, 5 % of labels flipped in a version (relabel edits), found by 4-fold LeNet runs."""
    files = folds.labelled_files("digits")
    assert files.paths[0].endswith("/0.png") and len(files) == 1797  # built-in path scheme
    flips = _flips(files.labels, len(files.classes), seed=1)
    name = versions.create_version("digits", "digits-noisy")
    edits = [{"op": "relabel", "path": files.paths[i], "to": files.classes[c]} for i, c in flips.items()]
    versions.edit_version(name, edits)
    # An image keeps its path in the base (its origin); the version gives it the wrong class.
    truth = {files.paths[i]: files.classes[files.labels[i]] for i in flips}

    issues = find_dataset_label_issues(name, TrainConfig(dataset=name, **TEMPLATE), tmp_path / "out", folds=4)
    recall, right = _check_found(tmp_path / "out" / "label_issues.csv", truth)
    assert recall >= 0.7, recall
    assert right > 0.5, right
    assert not np.isnan(issues.pred_probs).any()  # every image got an out-of-sample prediction
    assert len(issues.runs) == 4
    frame = pd.read_csv(tmp_path / "out" / "label_issues.csv", dtype=str).set_index("path")
    assert all(
        frame.loc[p, "given"] == files.classes[c] for p, c in ((files.paths[i], c) for i, c in flips.items())
    )
    for run_name in issues.runs:  # every fold is an ordinary finished run, on a view of the pinned version
        run = load_run(run_name)
        assert run.status == "finished" and "fold" in run.name
        assert run.hidden and run.purpose == "fold" and run.group == "label-check:out"
        assert run.config["dataset"] == name and run.dataset_info["dataset_ref"]["fold"][1] == 4
        assert len(run.dataset().val) < len(files) / 3
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "label_issues.csv",
        "out_of_sample_probs.csv",
    ]


def _write_zip(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """An image-folder zip of 900 digits as PNGs in class folders, 5 % of them in a wrong folder."""
    classes, images, targets = folds.builtin_arrays("digits")
    images, targets = images[:900], targets[:900]
    flips = _flips(list(targets), len(classes), seed=2)
    zip_path, truth = tmp_path / "digits-upload.zip", {}
    with zipfile.ZipFile(zip_path, "w") as archive:
        for i, (pixels, target) in enumerate(zip(images, targets, strict=True)):
            folder = classes[flips.get(i, int(target))]
            png = tmp_path / "img.png"
            Image.fromarray(pixels[..., 0], "L").save(png)
            archive.write(png, f"upload/{folder}/img_{i:04d}.png")
            if i in flips:
                truth[f"{folder}/img_{i:04d}.png"] = classes[int(target)]
    return zip_path, truth


def test_uploaded_zip_with_flipped_labels_via_cli(tmp_path, capsys):
    zip_path, truth = _write_zip(tmp_path)
    out = tmp_path / "issues"
    args = ["find-label-issues", "--dataset", str(zip_path), "--model", "lenet", "--epochs", "5"]
    code = main([*args, "--folds", "4", "--out", str(out), "--image-size", "16", "--threads", "1"])
    assert code == 0, capsys.readouterr().err
    recall, right = _check_found(out / "label_issues.csv", truth)
    assert recall >= 0.7, recall
    assert right > 0.5, right
    frame = pd.read_csv(out / "label_issues.csv")
    root = load_dataset(str(zip_path)).root
    assert all((root / p).is_file() for p in frame["path"])  # relative to the root as in the archive
    assert capsys.readouterr().out.strip().endswith("label_issues.csv")


def test_cli_bad_input_is_one_line_and_status_2(capsys):
    code = main(["find-label-issues", "--dataset", "nope", "--model", "lenet", "--epochs", "1", "--out", "x"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_rank_matches_cleanlab_and_sorts():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(3), size=50)
    given = rng.integers(0, 3, size=50)
    frame = rank_label_issues([f"{g}/{i}.png" for i, g in enumerate(given)], given, probs, ["a", "b", "c"])
    expected = 1 - get_label_quality_scores(given, probs, method="self_confidence")
    by_path = dict(zip(frame["path"], frame["score"], strict=True))
    assert np.allclose([by_path[f"{g}/{i}.png"] for i, g in enumerate(given)], expected)
    assert frame["score"].is_monotonic_decreasing
    assert set(frame["suggested"]) <= {"a", "b", "c"}


def test_run_label_issues_maps_val_images_to_builtin_paths(tmp_path):
    run_dir = tmp_path / "run"
    train(TrainConfig(dataset="digits", **{**TEMPLATE, "epochs": 1}), run_dir)
    issues = run_label_issues(run_dir)
    assert len(issues.paths) == len(load_run(run_dir).dataset().val)
    # The class folder of every path is the image's given label, and the file holds the same pixels.
    assert all(p.split("/")[0] == issues.classes[g] for p, g in zip(issues.paths, issues.given, strict=True))
    root = folds.builtin_files("digits")
    val = load_run(run_dir).dataset().val
    for k in (0, 7, len(val) - 1):
        assert np.array_equal(np.asarray(Image.open(root / issues.paths[k])), np.asarray(val[k][0]))


def test_folds_are_stratified_views_that_write_nothing(tmp_path):
    files = folds.labelled_files("digits")
    held_out = [i for k in (1, 2, 3) for i in folds.fold_split(files.labels, k, 3, seed=0)[1]]
    assert sorted(held_out) == list(range(len(files)))  # every image held out exactly once
    train, val = folds.fold_split(files.labels, 2, 3, seed=0)
    assert sorted(train + val) == list(range(len(files)))
    per_class = np.bincount(np.asarray(files.labels)[val], minlength=10)
    assert per_class.min() >= np.bincount(files.labels).min() // 3 - 1  # stratified
    with pytest.raises(ValueError, match="folds"):
        folds.check_folds(files, 1)
    with pytest.raises(ValueError, match="fewer than 2 images"):
        folds.check_folds(folds.LabelledFiles("x", tmp_path, ["a", "b"], ["a/1", "b/1", "b/2"], [0, 1, 1]), 2)
