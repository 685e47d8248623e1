"""Predictions of a run: against the trainer, the cache, clear errors, new images, the evaluate CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm

from cnndash.evaluate import predict
from cnndash.evaluate.metrics import EvaluationError
from cnndash.preprocess import ImageDecodeError, open_image
from cnndash.runs import RunError


@pytest.fixture
def run_copy(tiny_run, tmp_path):
    """A private copy of the shared tiny run, so tests may write caches, CSVs or break files."""
    import shutil

    return Path(shutil.copytree(tiny_run, tmp_path / "runs" / "tiny"))


def test_predict_run_matches_the_trainers_validation_accuracy(run_copy):
    from cnndash.runs import load_run

    seen = []
    pred = predict.predict_run(
        run_copy, batch_size=16, on_progress=lambda done, total: seen.append((done, total))
    )
    run = load_run(run_copy)
    assert len(pred) == len(run.dataset().val) == seen[-1][1]
    assert seen[-1][0] == seen[-1][1] and len(seen) == -(-len(pred) // 16)
    assert pred.classes == run.classes
    best = load_run(run_copy).summary
    # best.pt is the best epoch; the trainer's val accuracy of that epoch must be reproduced exactly.
    history = run.metrics().set_index("epoch")
    assert pred.accuracy == pytest.approx(history.loc[best["best_epoch"], "val_acc"], abs=1e-9)
    assert pred.losses.mean() == pytest.approx(history.loc[best["best_epoch"], "val_loss"], rel=1e-4)


def test_prediction_cache_reused_and_invalidated(run_copy, monkeypatch):
    from cnndash.runs import Run

    calls = []
    original = Run.load_model

    def counting_load_model(self, *args, **kwargs):
        calls.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Run, "load_model", counting_load_model)
    first = predict.predict_run(run_copy)
    assert not first.from_cache and len(calls) == 1
    assert predict.predictions_cache_path(run_copy, "best").is_file()
    assert not list(run_copy.glob(".predictions_*"))  # no temporary file left behind

    again = predict.predict_run(run_copy)
    assert again.from_cache and len(calls) == 1  # model not run again
    np.testing.assert_array_equal(again.logits, first.logits)
    np.testing.assert_array_equal(again.targets, first.targets)

    # A changed checkpoint (e.g. training resumed and found a new best epoch) invalidates the cache.
    ckpt = torch.load(run_copy / "best.pt", weights_only=True)
    for name, tensor in ckpt["model"].items():
        if tensor.is_floating_point():
            ckpt["model"][name] = tensor * 0.5
    torch.save(ckpt, run_copy / "best.pt")
    changed = predict.predict_run(run_copy)
    assert not changed.from_cache and len(calls) == 2
    assert not np.allclose(changed.logits, first.logits)
    assert predict.predict_run(run_copy).from_cache

    # "last" has its own cache file.
    last = predict.predict_run(run_copy, "last")
    assert not last.from_cache and predict.predictions_cache_path(run_copy, "last").is_file()


def test_corrupt_cache_is_recomputed(run_copy):
    predict.predictions_cache_path(run_copy).write_bytes(b"not an npz")
    assert not predict.predict_run(run_copy).from_cache
    assert predict.predict_run(run_copy).from_cache


def test_missing_checkpoint_is_a_clear_error(run_copy):
    (run_copy / "best.pt").unlink()
    with pytest.raises(ValueError, match="best"):
        predict.predict_run(run_copy)
    with pytest.raises(EvaluationError, match="Unknown checkpoint"):
        predict.predict_run(run_copy, "middle")


def test_changed_dataset_classes_are_a_clear_error(run_copy):
    import json

    info = json.loads((run_copy / "dataset.json").read_text())
    info["classes"] = ["cat", "dog", "bird"]
    (run_copy / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(EvaluationError, match="dataset changed"):
        predict.predict_run(run_copy)


def test_deleted_dataset_is_a_clear_error(run_copy):
    import json

    config = json.loads((run_copy / "config.json").read_text())
    config["dataset"] = "my-deleted-upload"
    (run_copy / "config.json").write_text(json.dumps(config))
    info = json.loads((run_copy / "dataset.json").read_text())
    del info["dataset_ref"]  # a run from before pins: it loads its dataset by name
    (run_copy / "dataset.json").write_text(json.dumps(info))
    with pytest.raises(EvaluationError, match="my-deleted-upload"):
        predict.predict_run(run_copy)


def test_predict_images_uses_the_runs_preprocessing(run_copy):
    from PIL import Image

    from cnndash.runs import load_run

    run = load_run(run_copy)
    val = run.dataset().val
    reference = predict.predict_run(run_copy)
    # The validation images give the cached predictions; odd sizes and modes are converted by the run.
    images = [val[i][0] for i in range(3)]
    probs = predict.predict_images(run, images)
    np.testing.assert_allclose(probs, reference.probs[:3], atol=1e-5)
    odd = predict.predict_images(run, [Image.new("L", (50, 20), 128), Image.new("RGBA", (7, 9))])
    assert odd.shape == (2, len(run.classes))
    np.testing.assert_allclose(odd.sum(axis=1), 1.0, atol=1e-6)
    with pytest.raises(ImageDecodeError, match="not an image"):
        open_image(b"hello", "notes.txt")


def test_cli_evaluate_writes_csvs_that_match(run_copy, capsys):
    from cnndash.cli import main

    assert main(["evaluate", "--run", str(run_copy)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(run_copy / "confusion_matrix.csv"), str(run_copy / "classification_report.csv")]
    pred = predict.predict_run(run_copy)
    assert pred.from_cache  # the CLI filled the cache

    cm = pd.read_csv(run_copy / "confusion_matrix.csv", index_col=0)
    assert list(cm.index) == pred.classes and list(cm.columns) == pred.classes
    np.testing.assert_array_equal(cm.to_numpy(), skm.confusion_matrix(pred.targets, pred.preds))
    assert cm.to_numpy().sum() == len(pred)

    report = pd.read_csv(run_copy / "classification_report.csv", index_col=0)
    expected = skm.classification_report(
        pred.targets, pred.preds, target_names=pred.classes, output_dict=True, zero_division=0
    )
    for name in pred.classes:
        assert report.loc[name, "recall"] == pytest.approx(expected[name]["recall"])
        assert report.loc[name, "support"] == expected[name]["support"]
    assert report.loc["accuracy", "f1-score"] == pytest.approx(pred.accuracy)


def test_cli_evaluate_errors_exit_2(run_copy, tmp_path, capsys):
    from cnndash.cli import main

    assert main(["evaluate", "--run", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (run_copy / "last.pt").unlink()
    assert main(["evaluate", "--run", str(run_copy), "--checkpoint", "last"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "last" in err and len(err.splitlines()) == 1


def test_checkpoint_from_another_dataset_is_a_clear_error(run_copy):
    from cnndash.models import build_model

    ckpt = torch.load(run_copy / "best.pt", weights_only=True)
    other = build_model("lenet", num_classes=5, in_channels=3, image_size=32)
    ckpt["model"] = other.state_dict()
    ckpt["classes"] = ["a", "b", "c", "d", "e"]
    torch.save(ckpt, run_copy / "best.pt")
    with pytest.raises(RunError, match="another run"):
        predict.predict_run(run_copy)


def test_corrupt_checkpoint_is_a_clear_error(run_copy):
    (run_copy / "best.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(RunError, match="cannot be read"):
        predict.predict_run(run_copy)


def test_predictions_that_do_not_cover_the_validation_split_are_refused():
    from types import SimpleNamespace

    from cnndash.evaluate.metrics import Predictions

    predictions = Predictions(np.zeros((3, 2), dtype=np.float32), np.zeros(3, dtype=np.int64), ["a", "b"])
    run = SimpleNamespace(name="tiny")
    predict.check_predictions_match(run, SimpleNamespace(val=[None] * 3), predictions)  # same size: fine
    with pytest.raises(EvaluationError, match=r"now has 4 validation images .* cover 3; the dataset changed"):
        predict.check_predictions_match(run, SimpleNamespace(val=[None] * 4), predictions)
