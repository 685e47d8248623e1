"""The Data view (data_view.render_data_view) through AppTest on a real trained digits run."""

from __future__ import annotations

import io
import json
import textwrap
import zipfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnndash import data, paths
from cnndash.data import folds, versions
from cnndash.evaluate.label_issues import read_label_issues, run_label_issues, val_paths
from cnndash.explain.embeddings import embed_run, penultimate_layer
from cnndash.jobs.label_check import LabelJobBusyError, active_label_job, label_issues_job, start_label_issues
from cnndash.jobs.registry import get_registry
from cnndash.plots import label_issues as plots_labels
from cnndash.runs import load_run
from cnndash.training.loops import TrainConfig, train
from tests.conftest import ROOT, plotly_array
from tests.pages.test_pages import run_page

PAGE = textwrap.dedent(
    f"""
    import sys
    sys.path.insert(0, {str(ROOT)!r})
    import streamlit as st
    from cnndash.runs import load_run
    from ui.evaluation.data_view import render_data_view, render_label_actions
    run = load_run(st.session_state.get("run", "digits-run"))
    if st.session_state.get("actions"):
        render_label_actions(run, 0, key="cell")
    else:
        render_data_view(run)
    """
)


@pytest.fixture
def digits_run():
    """A one-epoch LeNet run on 16 px digits, named "digits-run" in the test's runs folder."""
    run_dir = paths.runs_dir() / "digits-run"
    config = TrainConfig(
        dataset="digits", model="lenet", epochs=1, image_size=16, tensorboard=False, threads=1
    )
    train(config, run_dir)
    return run_dir


def _ok(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _app(tmp_path) -> AppTest:
    """The tiny page as a script; ``ui`` resolves its page files next to the script, so link pages/."""
    script = tmp_path / "data_view.py"
    script.write_text(PAGE)
    (tmp_path / "pages").symlink_to(ROOT / "pages")
    return AppTest.from_file(str(script), default_timeout=120)


def test_gallery_relabel_undo_and_retrain(digits_run, tmp_path):
    at = _app(tmp_path)
    at.run()
    _ok(at)
    frame = run_label_issues(digits_run).frame()
    top = frame[frame["suggested"] != frame["given"]].iloc[0]
    # The embedding scatter: one point per validation image, suspects drawn in their own trace.
    spec = json.loads(at.get("plotly_chart")[-1].proto.spec)
    assert sum(len(plotly_array(trace["x"])) for trace in spec["data"]) == len(frame)
    assert any(trace["name"] == "suspicious label" for trace in spec["data"])

    # Keyboard shortcuts (Streamlit stores them lower-case) act on the first, most suspicious image and on
    # undo; the others have none.
    relabel = at.button(key=f"data-relabel-{top['path']}")
    assert (relabel.proto.shortcut, at.button(key=f"data-remove-{top['path']}").proto.shortcut) == ("a", "x")
    second = frame[frame["suggested"] != frame["given"]].iloc[1]
    assert at.button(key=f"data-relabel-{second['path']}").proto.shortcut == ""
    relabel.click().run()
    _ok(at)
    assert at.button(key="data-undo").proto.shortcut == "u"
    # The next image moved up and took the shortcuts over.
    assert at.button(key=f"data-relabel-{second['path']}").proto.shortcut == "a"
    version = at.session_state["data-version::digits-run"]
    changes = versions.diff("digits", version)
    assert list(changes["path_a"]) == [top["path"]] and list(changes["class_b"]) == [top["suggested"]]
    # No file is written: the version's image is the built-in's file, with its class now in the manifest.
    assert (folds.builtin_files("digits") / changes["origin"].iloc[0]).is_file()
    files = versions.dataset_files(version).set_index("path")
    assert files.loc[top["path"], "class"] == top["suggested"]

    at.button(key="data-undo").click().run()
    _ok(at)
    assert versions.diff("digits", version).empty

    # A one-epoch model (~76 % out of sample): bulk accept is off, and says why.
    assert _popover(at, "data-accept-all").disabled
    assert any(c.value.startswith("Off: the model agrees with only") for c in at.caption)
    at.button(key=f"data-relabel-{top['path']}").click().run()
    _ok(at)
    assert not versions.diff("digits", version).empty
    at.button(key="data-retrain").click().run()
    _ok(at)
    job = get_registry().get(at.session_state["data-retrained"])
    assert job is not None and job.wait(120)
    retrained = load_run(job.run_name)
    assert retrained.status == "finished" and retrained.config["dataset"] == version
    assert retrained.config["model"] == "lenet" and retrained.config["image_size"] == 16


def test_embedding_is_penultimate_and_cached(digits_run):
    run = load_run(digits_run)
    emb = embed_run(run)
    model = run.load_model()
    assert emb.features.shape == (len(run.dataset().val), penultimate_layer(model)[1].in_features)
    assert emb.tsne.shape == emb.pca.shape == (len(emb.features), 2)
    assert not any(m._forward_hooks for m in model.modules())
    assert (emb.preds == emb.targets).mean() > 0.5
    assert (digits_run / "embeddings_best.npz").is_file()
    again = embed_run(run)
    assert (again.tsne == emb.tsne).all()


def test_embedding_figure_one_trace_per_class_plus_suspects():
    points = pd.DataFrame(
        {
            "x": [0.0, 1.0, 2.0, 3.0],
            "y": [0.0, 1.0, 0.0, 1.0],
            "path": ["a/1.png", "a/2.png", "b/3.png", "b/4.png"],
            "given": ["a", "a", "b", "b"],
            "score": [0.1, 0.2, 0.95, 0.3],
            "suspect": [False, False, True, False],
        }
    )
    fig = plots_labels.embedding_figure(points)
    assert [t.name for t in fig.data] == ["a", "b", "suspicious label"]
    assert [len(t.x) for t in fig.data] == [2, 1, 1]
    assert fig.data[2].customdata[0][0] == "b/3.png" and fig.data[2].marker.symbol == "x"
    hist = plots_labels.score_histogram(points["score"], 0.9)
    assert hist.layout.shapes[0].x0 == 0.9


def test_label_actions_for_other_galleries(digits_run, tmp_path):
    issues = run_label_issues(digits_run)
    path, given = issues.paths[0], issues.classes[issues.given[0]]
    other = next(c for c in issues.classes if c != given)
    at = _app(tmp_path)
    at.session_state["actions"] = True
    at.run()
    _ok(at)
    at.selectbox(key="cell-to").select(other).run()
    at.button(key="cell-relabel").click().run()
    _ok(at)
    changes = versions.diff("digits", at.session_state["data-version::digits-run"])
    assert list(zip(changes["path_a"], changes["class_b"], strict=True)) == [(path, other)]
    assert at.caption[0].value == "edited in the working version"


def test_kfold_every_image_in_the_background(digits_run, tmp_path):
    at = _app(tmp_path)
    at.run()
    at.number_input(key="data-folds").set_value(2).run()
    at.button(key="data-kfold-start").click().run()
    _ok(at)
    job = label_issues_job("digits-run")
    assert job is not None and job.wait(180), job.snapshot()
    assert job.snapshot().status == "finished" and job.snapshot().fraction == 1.0
    at.run()
    _ok(at)
    assert at.radio(key="data-source").value.startswith("K-fold")
    kfold = read_label_issues(paths.data_dir() / "label-issues" / "digits-run")
    assert len(kfold.paths) == 1797 and not np.isnan(kfold.pred_probs).any()
    assert any("of 1797" in m.value for m in at.markdown)  # the gallery now ranks every image


def test_kfold_and_training_refuse_each_other_and_the_sidebar_shows_the_check(digits_run, tmp_path):
    """The K-fold job trains outside the job registry: it is shown in the sidebar, and neither it nor a
    training run starts while the other trains."""
    # Load ui.evaluation.data_view (and ui) inside a script run, as the Evaluation page does: the sidebar then asks
    # it. (Importing ``ui`` outside a script run would leave its st.Page objects unusable.)
    loader = _app(tmp_path)
    loader.session_state["actions"] = True
    loader.run()
    _ok(loader)
    template = TrainConfig(dataset="digits", model="lenet", epochs=200, image_size=16, tensorboard=False,
                           threads=1)  # fmt: skip
    job = start_label_issues("digits-run", "digits", template, tmp_path / "issues", 2)
    try:
        with pytest.raises(LabelJobBusyError, match="already being computed"):
            start_label_issues("other-run", "digits", template, tmp_path / "other", 2)
        assert active_label_job()[1] is job
        home = run_page("pages/home.py")
        assert "Label check (K-fold training)" in [c.value for c in home.sidebar.caption]
        assert any("digits-run" in m.value for m in home.sidebar.markdown)
        training = run_page("pages/training.py")
        training.button(key="train-start").click().run()
        assert any("label check of run 'digits-run'" in e.value for e in training.error)
        assert get_registry().active() is None
    finally:
        job.stop()
        assert job.wait(120)
    assert active_label_job() is None
    running = get_registry().start(TrainConfig(dataset="digits", epochs=200, image_size=16, threads=1))
    try:
        with pytest.raises(LabelJobBusyError, match=f"Run '{running.run_name}' is training"):
            start_label_issues("digits-run", "digits", template, tmp_path / "issues", 2)
    finally:
        running.stop()
        assert running.wait(60)


def _popover(at, key: str):
    """The popover block whose widget key is ``key`` (its proto: label, disabled, help)."""
    for node in at._tree:
        if getattr(node, "type", "") == "popover" and key in str(node.proto):
            return node.proto.popover
    raise AssertionError(f"no popover {key!r}")


@pytest.fixture
def noisy_run():
    """LeNet trained for a second on three solid colours whose only wrong label is a validation image."""
    from cnndash import data
    from tests.fixtures import noisy_colours_zip

    data.import_dataset_zip(noisy_colours_zip(paths.data_dir().parent / "noisy.zip"), "noisy")
    config = TrainConfig(dataset="noisy", model="lenet", epochs=6, image_size=16, batch_size=16,
                         tensorboard=False, threads=1)  # fmt: skip
    train(config, paths.runs_dir() / "noisy-run")
    return paths.runs_dir() / "noisy-run"


def test_trust_bulk_accept_and_time_estimate(noisy_run, tmp_path):
    """Issue 23, point 7: the view says how far to trust the suggestions, bulk accept is a confirmation
    that repeats the count and that figure, the K-fold check says how long it takes, and an edit is
    acknowledged where the user is."""
    from cnndash.evaluate.label_trust import duration_text, label_check_seconds, suggestion_trust
    from tests.fixtures import NOISY_WRONG

    at = _app(tmp_path)
    at.session_state["run"] = "noisy-run"
    at.run()
    _ok(at)
    issues = run_label_issues(noisy_run)
    trust = suggestion_trust(issues.given, issues.pred_probs)
    assert trust.bulk_ok and trust.accuracy == pytest.approx(30 / 31)
    assert any(f"{trust.accuracy:.0%} of 31 images it never trained on" in i.value for i in at.info)
    # The check's time, before it starts, at the speed this run measured.
    run = load_run(noisy_run)
    seconds = label_check_seconds(31 + 60, 5, 6, run.summary, "cpu")
    assert (
        at.button(key="data-kfold-start").label
        == f"Check every image (5 training runs, {duration_text(seconds)})"
    )
    # Bulk accept: a popover with the count, the trust figure and the list; nothing changes until confirmed.
    popover = _popover(at, "data-accept-all")
    assert not popover.disabled and popover.label == "Accept all 1 suggestion above 0.90…"
    assert any(
        m.value.startswith("Relabel **1 image** as the model suggests? The model agrees") for m in at.markdown
    )
    assert _version(at) is None
    at.button(key="data-accept-all-confirm").click().run()
    _ok(at)
    changes = versions.diff("noisy", _version(at))
    assert list(zip(changes["path_a"], changes["class_b"], strict=True)) == [(NOISY_WRONG, "blue")]
    assert [t.value for t in at.toast] == ["Relabelled 1 image as the model suggests."]
    assert any(s.value.startswith("Relabelled 1 image as the model suggests. Undo with") for s in at.success)


def _version(at):
    try:  # AppTest's session state has no .get
        return at.session_state["data-version::noisy-run"]
    except KeyError:
        return None


def test_remove_is_acknowledged_where_the_user_is(noisy_run, tmp_path):
    from tests.fixtures import NOISY_WRONG

    at = _app(tmp_path)
    at.session_state["run"] = "noisy-run"
    at.run()
    at.button(key=f"data-remove-{NOISY_WRONG}").click().run()
    _ok(at)
    assert [t.value for t in at.toast] == [r"Removed val/red/blue-wrong.png."]
    assert at.success[0].value.startswith(r"Removed val/red/blue-wrong.png. Undo with **U**")
    at.button(key="data-undo").click().run()
    _ok(at)
    assert [t.value for t in at.toast] == ["Undid the last edit."] and not at.success


def _pets_zip(path, stem: str):
    """Two classes of 8 plain 12 px PNGs named ``<stem>-<i>.png``."""
    with zipfile.ZipFile(path, "w") as archive:
        for k, cls in enumerate(("cat", "dog")):
            for i in range(8):
                buffer = io.BytesIO()
                Image.new("RGB", (12, 12), (200 * k, 20 * i, 90)).save(buffer, format="PNG")
                archive.writestr(f"{cls}/{stem}-{i}.png", buffer.getvalue())
    return path


def test_a_run_that_names_its_dataset_never_acts_on_the_files_of_the_upload_it_replaced(tmp_path):
    """A run recorded without a dataset ref (before pins) loads its dataset by name: once that upload is
    replaced, the cached validation paths must follow, or Relabel edits a file that is not there."""
    data.import_dataset_zip(_pets_zip(tmp_path / "old.zip", "old"), "pets")
    run_dir = paths.runs_dir() / "pets-run"
    train(TrainConfig(dataset="pets", model="lenet", epochs=1, image_size=16, tensorboard=False), run_dir)
    info = json.loads((run_dir / "dataset.json").read_text())
    info.pop("dataset_ref")
    (run_dir / "dataset.json").write_text(json.dumps(info))
    at = _app(tmp_path)
    at.session_state["run"], at.session_state["actions"] = "pets-run", True
    at.run()
    _ok(at)
    data.replace_dataset_zip(_pets_zip(tmp_path / "new.zip", "new"), "pets")
    first = val_paths(load_run(run_dir))[0]  # the engine's: the replacement's files
    assert first.split("/")[1].startswith("new-"), first
    at.run()
    at.selectbox(key="cell-to").set_value("dog" if first.startswith("cat/") else "cat")
    at.button(key="cell-relabel").click().run()
    _ok(at)
    changed = versions.diff("pets", at.session_state["data-version::pets-run"])
    assert changed["origin"].tolist() == [first], changed
