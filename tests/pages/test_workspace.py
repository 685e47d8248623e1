"""The workspace (``ui.workspace``) through AppTest, issue 23's points 1, 2, 3, 5 and 6: a choice made on one
page is the choice on the others, nothing is lost on a page switch, a reload (a new session reading the
URL) keeps the view and leaves no hidden setting, a link reproduces a view, a bogus or hostile query falls
back quietly, a refused setting blocks Train with its reason, and fold runs stay out of every picker.

A browser empties the URL's query on a page switch and the workspace writes it back; :func:`visit` does
the same to the AppTest session, so a test cannot pass on a query the browser would have dropped.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from cnndash import paths
from cnndash.jobs.registry import get_registry
from cnndash.training.auto import auto_config
from cnndash.training.loops import TrainConfig
from tests.conftest import ROOT
from tests.pages.test_data import make_zip

TRAINING = "pages/training.py"
DATA = "pages/data_augmentation.py"
CALCULATOR = "pages/conv_calculator.py"
LEARN = "pages/learn.py"
EVALUATION = "pages/evaluation.py"
GRADCAM = "pages/grad_cam.py"


@pytest.fixture(autouse=True)
def _no_job_left_running():
    yield
    get_registry().stop_all(timeout=60)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def open_app(query: dict | None = None, page: str | None = None) -> AppTest:
    """A new browser session (a first visit, a reload or a shared link) on ``page`` with ``query``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(query or {})
    at.run()
    if page is not None:
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def visit(at: AppTest, page: str) -> AppTest:
    """Switch pages as the sidebar does: Streamlit drops the query string on the way."""
    at.query_params.clear()
    at.switch_page(page)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def reload(at: AppTest, page: str) -> AppTest:
    """The same URL in a new session."""
    return open_app(dict(at.query_params), page)


def copy_run(tiny_run: Path, name: str, when: float, **config) -> Path:
    """A copy of the tiny run named ``name`` (config changed as given), started at ``when`` (list order)."""
    target = paths.runs_dir() / name
    shutil.copytree(tiny_run, target)
    path = target / "config.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | config))
    os.utime(path, (when, when))
    return target


# --------------------------------------------------------------------------------------------------
# Point 1: choices carry across pages


def test_an_uploaded_dataset_is_the_previews_and_trainings_and_the_saved_pipeline_is_preselected(tmp_path):
    at = open_app(page=DATA)
    payload = make_zip(tmp_path / "pets.zip", {"cat": 4, "dog": 4}).read_bytes()
    at.get("file_uploader")[0].set_value(("pets.zip", payload, "application/zip")).run()
    assert ok(at).selectbox(key="data-dataset").value == "pets"
    assert at.query_params["dataset"] == "pets"
    at.radio(key="data-section").set_value("Augmentation").run()
    assert ok(at).radio(key="aug-source").value == "Dataset image"  # the preview starts on the upload
    assert at.selectbox(key="aug-dataset").value == "pets"
    at.text_input(key="aug-save-name").set_value("flips").run()
    at.button(key="aug-save").click().run()
    visit(at, TRAINING)
    assert at.selectbox(key="train-dataset").value == "pets"
    assert at.selectbox(key="train-pipeline").value == "flips"
    assert (at.query_params["dataset"], at.query_params["pipeline"]) == ("pets", "flips")
    at.selectbox(key="train-dataset").set_value("digits").run()  # chosen on Training: chosen on Data
    visit(at, DATA)  # back on the section left: Augmentation
    assert at.selectbox(key="aug-dataset").value == "digits"
    at.radio(key="data-section").set_value("Datasets").run()
    assert at.selectbox(key="data-dataset").value == "digits"


def test_evaluation_gradcam_and_learn_start_on_the_run_just_trained(tiny_run):
    copy_run(tiny_run, "older", 1_000)
    copy_run(tiny_run, "newer", 2_000)
    at = open_app(page=EVALUATION)
    at.selectbox(key="eval-run").set_value("older").run()  # chosen here: chosen on Grad-CAM too
    visit(at, GRADCAM)
    assert at.selectbox(key="cam-run").value == "older"
    visit(at, TRAINING)
    at.number_input(key="train-epochs").set_value(1).run()
    at.button(key="train-start").click().run()
    job = get_registry().latest()
    assert ok(at).query_params["run"] == job.run_name
    assert job.wait(120) and job.snapshot().status == "finished", job.snapshot().error
    for page, key in ((EVALUATION, "eval-run"), (GRADCAM, "cam-run")):
        assert visit(at, page).selectbox(key=key).value == job.run_name, page
    at.session_state["learn-lesson"] = "10 · What a trained network sees"
    assert visit(at, LEARN).selectbox(key="learn-run").value == job.run_name


# --------------------------------------------------------------------------------------------------
# Point 2: nothing is lost on a page switch; a reload and a link keep the view


def _edit_stack(at: AppTest) -> None:
    """Edit the first row's padding in the layer-stack editor, as a person would in the grid."""
    editor = next(key for key in at.session_state if key.startswith("stack-editor-"))
    at.session_state[editor] = {"edited_rows": {0: {"padding": "0"}}, "added_rows": [], "deleted_rows": []}
    at.run()


def test_the_calculator_its_stack_and_the_lesson_survive_a_page_switch_and_a_reload():
    at = open_app(page=CALCULATOR)
    at.radio(key="conv-layer").set_value("MaxPool2d").run()
    at.number_input(key="conv-stride").set_value(2).run()
    at.number_input(key="kernel-dilation").set_value(2).run()
    at.number_input(key="stack-in-h").set_value(32).run()
    at.number_input(key="stack-in-w").set_value(32).run()
    _edit_stack(at)  # LeNet-5 on 32×32 without padding, as in the paper
    assert ok(at).data_editor[0].value["padding"][0] == "2"  # the editor's input, before the edit
    visit(at, LEARN)
    at.selectbox(key="learn-lesson").set_value("3 · Padding and stride").run()
    for _ in range(2):  # a page switch, then a reload of the calculator's URL
        visit(at, CALCULATOR)
        assert at.radio(key="conv-layer").value == "MaxPool2d"
        assert at.number_input(key="conv-stride").value == 2
        assert at.number_input(key="kernel-dilation").value == 2
        assert at.number_input(key="stack-in-h").value == 32
        assert ok(at).data_editor[0].value["padding"][0] == "0"  # reopened on the edited rows
        assert any("edited from LeNet-5" in c.value for c in at.code)
        assert visit(at, LEARN).selectbox(key="learn-lesson").value == "3 · Padding and stride"
        at = reload(at, CALCULATOR)


def test_an_unsaved_pipeline_survives_a_page_switch_and_a_reload():
    at = open_app(page=DATA)
    at.radio(key="data-section").set_value("Augmentation").run()
    at.number_input(key="aug-0-p").set_value(0.25).run()
    at.selectbox(key="aug-add-op").set_value("RandomRotation")
    at.button(key="aug-add").click().run()
    spec = json.loads(ok(at).text_area(key="aug-json").value)
    assert [step["op"] for step in spec] == ["RandomHorizontalFlip", "RandomRotation"]
    visit(at, CALCULATOR)
    visit(at, DATA)
    assert json.loads(at.text_area(key="aug-json").value) == spec
    again = reload(at, DATA)
    assert json.loads(again.text_area(key="aug-json").value) == spec


def test_a_link_reproduces_the_view(tiny_run):
    copy_run(tiny_run, "first", 1_000)
    copy_run(tiny_run, "second", 2_000)
    link = {
        "dataset": "digits",
        "run": "first",
        "lesson": "6",
        "calc": json.dumps({"conv-stride": 3, "conv-layer": "AvgPool2d"}),
        "compare": json.dumps({"a": "second", "b": "first"}),
    }
    at = open_app(link, DATA)
    assert at.selectbox(key="data-dataset").value == "digits"
    assert visit(at, TRAINING).selectbox(key="train-dataset").value == "digits"
    assert (at.selectbox(key="runs-a").value, at.selectbox(key="runs-b").value) == ("second", "first")
    assert visit(at, EVALUATION).selectbox(key="eval-run").value == "first"
    assert visit(at, LEARN).selectbox(key="learn-lesson").value == "6 · Pooling"
    visit(at, CALCULATOR)
    assert (at.radio(key="conv-layer").value, at.number_input(key="conv-stride").value) == ("AvgPool2d", 3)
    assert json.loads(at.query_params["calc"]) == {"conv-stride": 3, "conv-layer": "AvgPool2d"}


HOSTILE_ROW = {"layer": "Conv2d", "out": 6, "kernel": "[Log in](https://evil.example/login)"}


@pytest.mark.parametrize(
    "query",
    [
        {"dataset": "no-such-set", "run": "deleted-run", "pipeline": "gone", "lesson": "99", "calc": "{"},
        {"dataset": "shapes:count=100000000,size=1024", "run": "../../etc", "lesson": "x", "compare": "[1]"},
        {
            "dataset": "[Log in](https://evil.example)",
            "calc": json.dumps({"conv-stride": 10**9, "conv-layer": ":red[x]", "conv-bias": "yes"}),
            "stack": json.dumps({"preset": "<img src=x onerror=alert(1)>", "rows": [HOSTILE_ROW]}),
            "augment": json.dumps([{"op": "os.system", "cmd": "rm -rf ~"}]),
        },
    ],
)
def test_a_bogus_or_hostile_query_falls_back_quietly(query, tiny_run):
    copy_run(tiny_run, "tiny", 1_000)
    at = open_app(query, DATA)
    assert ok(at).selectbox(key="data-dataset").value == "shapes"
    assert visit(at, TRAINING).selectbox(key="train-dataset").value == "digits"
    assert at.selectbox(key="train-pipeline").value == "(none)"
    assert ok(visit(at, EVALUATION)).selectbox(key="eval-run").value == "tiny"
    assert ok(visit(at, LEARN)).selectbox(key="learn-lesson").value.startswith("1 · ")
    ok(visit(at, CALCULATOR))
    assert (at.radio(key="conv-layer").value, at.number_input(key="conv-stride").value) == ("Conv2d", 1)
    assert at.selectbox(key="stack-preset").value == "LeNet-5 (1×28×28)"
    assert "evil" not in json.dumps(at.data_editor[0].value.to_dict())
    rendered = [e.value for e in (*at.markdown, *at.caption, *at.error, *at.warning, *at.success)]
    assert not any("evil" in text or "onerror" in text for text in rendered)
    visit(at, DATA).radio(key="data-section").set_value("Augmentation").run()
    assert json.loads(ok(at).text_area(key="aug-json").value) == [{"op": "RandomHorizontalFlip", "p": 0.5}]


# --------------------------------------------------------------------------------------------------
# Point 3: a reload mid-run shows the run's settings as a view; nothing sticks


def test_a_reload_mid_run_shows_its_settings_read_only_and_leaves_nothing_behind():
    config = TrainConfig(dataset="shapes", model="simplecnn", epochs=500, batch_size=8, image_size=32)
    job = get_registry().start(config)
    at = open_app(page=TRAINING)  # a reload: a new session while the run trains
    assert at.selectbox(key="train-model").value == "simplecnn"
    assert at.number_input(key="train-image-size").value == 32
    assert at.number_input(key="train-image-size").disabled and at.selectbox(key="train-dataset").disabled
    assert any("settings above are the training run's" in c.value for c in at.caption)
    job.stop()
    assert job.wait(30)
    at.run()
    assert not at.number_input(key="train-image-size").disabled
    # The form's own values again (the suggestion for digits), not pinned at the run's 32 px.
    assert (
        at.number_input(key="train-image-size").value
        == auto_config(TrainConfig(dataset="digits")).config.image_size
    )
    assert at.selectbox(key="train-model").value == "lenet"
    at.selectbox(key="train-dataset").set_value("shapes").run()
    seen = next(m.value for m in at.markdown if "The model will see" in m.value)
    assert "set by hand" not in seen


# --------------------------------------------------------------------------------------------------
# Point 5: a value the engine refuses blocks Train, with the reason next to the field


def test_a_refused_setting_blocks_train_with_its_range_next_to_the_field():
    at = open_app(page=TRAINING)
    at.number_input(key="train-lr").set_value(100.0).run()
    assert at.number_input(key="train-lr").value == 100.0  # accepted as typed, not silently kept at 0.003
    assert at.button(key="train-start").disabled
    errors = [e.value for e in at.error]
    assert errors == ["Learning rate must be a positive number of at most 10 (e.g. 0.003), got 100."]
    assert any("Train is off until the setting marked above is fixed" in c.value for c in at.caption)
    at.number_input(key="train-lr").set_value(0.01).run()
    at.number_input(key="train-weight-decay").set_value(-0.5).run()
    assert [e.value for e in at.error] == [
        "Weight decay must be a number of at least 0 (e.g. 0.0001), got -0.5. (More settings)"
    ]
    at.number_input(key="train-weight-decay").set_value(0.0).run()
    assert not ok(at).button(key="train-start").disabled


# --------------------------------------------------------------------------------------------------
# Point 6: a label check's fold runs are listed under their check, never in a picker


def test_fold_runs_are_absent_from_every_picker_and_listed_under_their_check(tiny_run):
    copy_run(tiny_run, "mine", 1_000)
    copy_run(tiny_run, "other", 1_500)
    for k in (1, 2):
        copy_run(tiny_run, f"mine-fold{k}of2", 2_000 + k, purpose="fold", group="label-check:mine")
    folds = {"mine-fold1of2", "mine-fold2of2"}
    at = open_app(page=EVALUATION)
    assert not folds & {o.split(" ")[0] for o in at.selectbox(key="eval-run").options}
    assert not folds & set(visit(at, GRADCAM).selectbox(key="cam-run").options)
    at.session_state["learn-lesson"] = "10 · What a trained network sees"
    assert not folds & set(visit(at, LEARN).selectbox(key="learn-run").options)
    visit(at, TRAINING)
    for key in ("runs-a", "runs-b", "runs-target"):
        assert set(at.selectbox(key=key).options) == {"mine", "other"}, key
    assert set(at.multiselect(key="runs-compare").options) == {"mine", "other"}
    tables = [set(d.value["run"]) for d in at.dataframe if "run" in d.value.columns]
    assert tables == [{"mine", "other"}, folds]  # the Runs table, then the check's own table
    assert [e.label for e in at.expander if "Label check" in e.label] == [
        "Label check of run mine: 2 fold runs"
    ]


def test_the_compare_picker_keeps_the_pair_chosen(tiny_run):
    copy_run(tiny_run, "r1", 1_000)
    copy_run(tiny_run, "r2", 2_000)
    copy_run(tiny_run, "r3", 3_000)
    at = open_app(page=TRAINING)
    assert (at.selectbox(key="runs-a").value, at.selectbox(key="runs-b").value) == ("r2", "r3")
    at.selectbox(key="runs-a").set_value("r1").run()
    for k in (4, 5):  # two more trainings, and a label check's folds
        copy_run(tiny_run, f"r{k}", 3_000 + k)
        copy_run(tiny_run, f"r{k}-fold1of2", 3_100 + k, purpose="fold", group=f"label-check:r{k}")
        at.run()
        assert (at.selectbox(key="runs-a").value, at.selectbox(key="runs-b").value) == ("r1", "r3")
    visit(at, EVALUATION)
    assert visit(at, TRAINING).selectbox(key="runs-a").value == "r1"
    assert at.selectbox(key="runs-b").value == "r3"


def test_the_runs_whose_curves_are_overlaid_survive_a_page_switch_and_a_new_run_joins_them(tiny_run):
    """The journey's retrain came back alone on the Runs tab: the curve choice was lost on the page switch."""
    copy_run(tiny_run, "first", 1_000)
    at = open_app(page=TRAINING)
    assert at.multiselect(key="runs-compare").value == ["first"]
    visit(at, CALCULATOR)
    copy_run(tiny_run, "retrained", 2_000)  # finished while the person was elsewhere
    visit(at, TRAINING)
    assert at.multiselect(key="runs-compare").value == ["retrained", "first"]
