"""The pseudo-locale check (issue 25): every page, and every Learn lesson, rendered with ``?lang=qps`` shows
no text that is neither translated (``⟦…⟧``) nor data (numbers, code, names)."""

from __future__ import annotations

import io
import shutil
import time
import zipfile

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui
from cnndash import augment
from cnndash.data import BUILTIN_DATASETS
from cnndash.device import DEVICE_CHOICES
from cnndash.jobs import registry
from cnndash.kernels import SAMPLE_PHOTOS
from cnndash.lessons.pool_norm_dropout import NORMS
from cnndash.models import MODEL_NAMES
from cnndash.plots.gradcam import COLORMAPS
from cnndash.pretrained import MODELS_WITH_WEIGHTS, published_name
from cnndash.runs import load_run, write_status
from cnndash.search.job import active_search_job
from cnndash.single_layer import LAYER_KINDS
from cnndash.stack import COLUMNS, LAYER_TYPES, PRESETS
from cnndash.training.loops import TrainConfig, TrainingDivergedError, train
from cnndash.training.lr_finder import TrialCheck, candidates_from_curve, offer_suggestion
from cnndash.training.optim import OPTIMIZERS
from tests.conftest import ROOT, TINY_RUN_DATASET
from tests.pages.pseudo import unmarked, visible_text
from ui import i18n
from ui.gradcam.explore import VIEWS as GRADCAM_VIEWS
from ui.i18n import PSEUDO


def _mixed_page():
    import pandas as pd
    import plotly.graph_objects as go
    import streamlit as st

    st.title("⟦Title⟧")
    st.caption("⟦Stored as ⟦pets⟧: 3 images⟧ — `nn.Conv2d` 32×32 0.5")
    st.markdown("**⟦Loss⟧**: 0.25 :material/home: plain words here")
    st.radio("⟦Pick⟧", ["⟦One⟧", "Untranslated option", "LeNet"], help="A help text")
    st.button("⟦Go⟧")
    with st.expander("Open me"):
        st.write("x")
    st.dataframe(pd.DataFrame({"⟦class⟧": ["a"], "count": [1]}))
    st.plotly_chart(
        go.Figure(layout={"title": {"text": "Chart title"}, "xaxis": {"title": {"text": "⟦epoch⟧"}}})
    )


def test_unmarked_finds_every_visible_string_that_escaped_translation():
    at = AppTest.from_function(_mixed_page)
    at.run()
    assert "⟦Title⟧" in visible_text(at)
    assert unmarked(at, data=["LeNet"]) == [
        "**⟦Loss⟧**: 0.25 :material/home: plain words here",
        "Untranslated option",
        "A help text",
        "Open me",
        "count",
        "Chart title",
    ]


def render(page: str, query: dict | None = None, *, errors: int = 0) -> AppTest:
    """``page`` through the app (sidebar, navigation, page) in the pseudo-locale; no exception, ``errors``
    error messages (none unless the test shows a failure)."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update({"lang": PSEUDO, **(query or {})})
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == errors, [e.value for e in at.error]
    return at


# Data each page shows untranslated: names of datasets, models, layers, presets, photos and PyTorch
# arguments (the Layer stack's columns are the arguments they set).
DATA_HOME = ["digits", "LeNet", "MNIST", "CIFAR", "shapes", "GPU", "CPU"]
DATA_CONV_CALCULATOR = [*LAYER_KINDS, *PRESETS, *SAMPLE_PHOTOS, *LAYER_TYPES, *COLUMNS, "CPU", "GPU"]


def test_home_is_translated_everywhere():
    assert unmarked(render("pages/home.py"), data=DATA_HOME) == []


def test_the_calculator_is_translated_everywhere():
    assert unmarked(render("pages/conv_calculator.py"), data=DATA_CONV_CALCULATOR) == []


DATA_LEARN = ["corr2d", "nn.Conv2d", "model.eval", "kernel", "padding", "stride", *NORMS]


@pytest.mark.parametrize("lesson", range(1, 11))
def test_every_learn_lesson_is_translated_everywhere(lesson):
    """Each lesson opened by its link (``?lesson=N``): AppTest cannot change a selectbox whose options are
    formatted (here, translated) from the values the app keeps, so each lesson is a fresh session."""
    at = render("pages/learn.py", {"lesson": str(lesson)})
    assert at.selectbox(key="learn-lesson").index == lesson - 1
    assert unmarked(at, data=DATA_LEARN) == []


# --------------------------------------------------------------------------------------------------
# The practitioner's pages, with a trained run so that results, reports and CAMs render.

# A run's data: its name, dataset and model, the classes of the tiny run's ``shapes``, devices, methods.
DATA_RUN = ["tiny", TINY_RUN_DATASET, "shapes", "LeNet", "circle", "square", "triangle", "CPU", "GPU"]
# The choices the Training form offers by name: datasets, models, optimisers, devices.
DATA_TRAINING = [*DATA_RUN, *BUILTIN_DATASETS, *MODEL_NAMES, *OPTIMIZERS, *DEVICE_CHOICES]


@pytest.fixture
def trained(tiny_run, tmp_path, monkeypatch):
    """A runs folder holding a private copy of the tiny run ("tiny"): the pages have results to show.

    The test itself is in the pseudo-locale too: AppTest formats a widget's options again in the test's
    thread (outside the script run, where the language would be English) when the page runs a second
    time, and they must match the options the page drew."""
    monkeypatch.setattr(i18n, "language", lambda: PSEUDO)
    # A restarted server: no job of an earlier test in this process is the Train tab's last run.
    monkeypatch.setattr(registry, "_REGISTRY", registry.JobRegistry())
    runs = tmp_path / "runs"
    shutil.copytree(tiny_run, runs / "tiny")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(runs))
    return runs


def test_the_training_page_is_translated_everywhere(trained):
    at = render("pages/training.py")
    assert at.title[0].value.startswith("⟦")
    assert unmarked(at, data=DATA_TRAINING) == []


def test_a_stopped_runs_message_is_translated(trained):
    """A job its user stopped (a real stop, after its first batches): while it trains, the sidebar's line is
    the job's progress template, translated; once stopped, the Train tab says why it ended from the template
    its summary keeps, not the English text stored beside it."""
    config = TrainConfig(dataset="shapes:count=120,size=32", model="lenet", epochs=50, batch_size=16)
    job = registry.get_registry().start(config)
    try:
        deadline = time.monotonic() + 60
        while not job.snapshot().batch_points and time.monotonic() < deadline:
            time.sleep(0.05)
        at = render("pages/training.py")
        progress = [m.value for m in at.sidebar.markdown if job.run_name in m.value]
        assert len(progress) == 1 and progress[0].endswith("⟧") and "— ⟦" in progress[0], progress
    finally:
        job.stop()
        assert job.wait(60)
    assert job.snapshot().status == "stopped"
    message = job.snapshot().summary["message"]
    assert message.startswith("Stopped by the user")
    at = render("pages/training.py")
    assert [w.value for w in at.warning if "stop_circle" in str(w.proto.icon)] == [
        "⟦" + message + "⟧"
    ]  # the pseudo-locale marks the template and fills in the same numbers
    assert unmarked(at, data=[*DATA_TRAINING, job.run_name]) == []


def test_a_diverged_runs_message_is_translated(trained):
    """A run whose loss became NaN (SGD at a learning rate of 10, as tests/engine/jobs/test_jobs.py makes one)
    failed: the Train tab says why from the template status.json keeps beside the English."""
    config = TrainConfig(dataset="shapes:count=120,size=32", model="lenet", epochs=2, batch_size=16,
                         optimizer="sgd", lr=10.0, weight_decay=1.0, schedule="constant")  # fmt: skip
    with pytest.raises(TrainingDivergedError) as failure:
        train(config, trained / "diverged")
    at = render("pages/training.py", errors=1)
    assert at.error[0].value == "⟦" + ui.text(str(failure.value)) + "⟧"
    assert unmarked(at, data=[*DATA_TRAINING, "diverged", "NaN", "nan", "inf"]) == []


def test_an_interrupted_runs_message_is_translated(trained):
    """A run whose process ended mid-run (status.json says running, nobody holds its lease): the run store
    words it in English; the Train tab says it in the reader's language, with Resume (it has last.pt)."""
    shutil.copytree(trained / "tiny", trained / "cut")
    write_status(trained / "cut", "running", "epoch 2 of 3")
    (trained / "cut" / "config.json").touch()  # the newest run (started last): the one the Train tab shows
    assert load_run(trained / "cut").status == "interrupted"
    at = render("pages/training.py")
    (said,) = [w.value for w in at.warning if "stop_circle" in str(w.proto.icon)]
    assert said.startswith("⟦The process training this run ended") and "resume it" in said
    assert at.button(key="train-resume") is not None
    assert unmarked(at, data=[*DATA_TRAINING, "cut"]) == []


def test_the_suggestion_the_lr_finder_and_the_weights_panel_are_translated(trained, tmp_path, monkeypatch):
    """Issue 24's Train tab: the suggestion and its reasons, a finding of the learning-rate finder (the
    engine's offer_suggestion on a recorded curve: its reason, trials table and log-axis figure), and the
    weights panel refusing a file whose hash does not match its name (the engine's WeightsError)."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))  # imported weights stay in the test
    at = render("pages/training.py")
    assert any(e.label.startswith("⟦") for e in at.expander if "lightbulb" in str(e.proto.icon))  # reasons
    dataset = at.selectbox(key="train-dataset").value
    lrs = [10 ** (-5 + i / 5) for i in range(21)]
    losses = [2.3 - 0.08 * i if i < 15 else 2.3 + (i - 14) ** 2 for i in range(21)]
    candidates = candidates_from_curve(lrs, losses)
    trials = [TrialCheck(lr, source, 2.3, 2.3 - 0.1 * n) for n, (source, lr) in enumerate(candidates.items())]
    trials.append(TrialCheck(3e-3, "current", 2.3, 2.25))
    at.session_state["train-lr-finding"] = (dataset, offer_suggestion(lrs, losses, candidates, trials, 3e-3))
    at.run()
    assert any(c.proto.id.endswith("train-lr-finder-chart") for c in at.get("plotly_chart"))
    assert at.success and at.success[0].value.startswith("⟦")  # the offer and the engine's reason
    at.get("file_uploader")[0].set_value(
        ("resnet18-f37072fd.pth", b"not weights", "application/octet-stream")
    )
    at.run()
    assert at.exception == [] and len(at.error) == 1 and at.error[0].value.startswith("⟦")  # the refusal
    published = [published_name(model) for model in MODELS_WITH_WEIGHTS]
    assert unmarked(at, data=[*DATA_TRAINING, *published, "resnet18-f37072fd.pth"]) == []


def test_the_search_tab_is_translated_everywhere(trained):
    """A real two-trial search (digits at 8 px, one epoch): its progress, trials table and results."""
    at = render("pages/training.py")
    at.selectbox(key="train-model").set_value("simplecnn").run()
    at.number_input(key="train-image-size").set_value(8).run()
    at.number_input(key="train-epochs").set_value(1).run()
    at.number_input(key="search-trials").set_value(2).run()
    at.button(key="search-start").click().run()
    job = active_search_job()
    try:
        assert job is not None and job.wait(240)
    finally:
        if job is not None and job.alive:
            job.stop()
    at.run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    assert any(c.proto.id.endswith("search-parcoords") for c in at.get("plotly_chart"))
    names = [t.run_name for t in job.snapshot().result.trials]
    assert unmarked(at, data=[*DATA_TRAINING, job.search_id, *names]) == []


EVALUATION_TABS = ["Confusion matrix", "Report", "Top losses", "Learning curves", "Predict", "Data"]


@pytest.mark.parametrize("tab", EVALUATION_TABS[:-1])  # Data: below, with its label check
def test_the_evaluation_page_is_translated_everywhere(trained, tab):
    at = render("pages/evaluation.py")
    at.session_state["eval-tab"] = at.tabs[EVALUATION_TABS.index(tab)].label  # the tab as it is labelled
    at.run()
    assert not at.exception and not at.error
    assert unmarked(at, data=[*DATA_RUN, "seaborn", "TorchScript", "ONNX"]) == []


def test_the_evaluation_data_tab_is_translated_everywhere(trained):
    at = render("pages/evaluation.py")
    at.session_state["eval-tab"] = at.tabs[EVALUATION_TABS.index("Data")].label
    at.run()
    assert not at.exception and not at.error
    assert at.get("plotly_chart")  # the score histogram and the embedding rendered
    # Image paths (class/file.png) and the projections' names are data.
    assert unmarked(at, data=[*DATA_RUN, "png", "t-SNE", "PCA", "cleanlab"]) == []


@pytest.mark.parametrize("view", GRADCAM_VIEWS)
def test_the_gradcam_page_is_translated_everywhere(trained, view):
    at = render("pages/grad_cam.py", {"run": "tiny"})
    at.radio(key="cam-explore").set_value(view).run()
    assert not at.exception and not at.error
    # Layer names and kinds (torch.nn classes), method names and Matplotlib colour maps are names.
    layers = [
        "features",
        "classifier",
        "Sequential",
        "Conv2d",
        "ReLU",
        "MaxPool2d",
        "AvgPool2d",
        "Linear",
        "Tanh",
    ]
    methods = ["Grad-CAM", "Grad-CAM++", "XGrad-CAM", "Layer-CAM", "Eigen-CAM", "Score-CAM"]
    assert unmarked(at, data=[*DATA_RUN, *layers, *methods, *COLORMAPS]) == []


def test_the_data_page_is_translated_everywhere():
    at = render("pages/data_augmentation.py")
    assert unmarked(at, data=[*DATA_RUN, "RGB"]) == []


def _png(mode: str, color: object) -> bytes:
    out = io.BytesIO()
    Image.new(mode, (8, 8), color).save(out, format="PNG")
    return out.getvalue()


def test_an_uploads_report_is_translated_everywhere(monkeypatch):
    """An upload of grayscale photos, some with transparency: the report's mixed-modes note is the engine's
    template, marked, with the modes and the target mode filled in."""
    monkeypatch.setattr(i18n, "language", lambda: PSEUDO)  # AppTest formats options again (see trained)
    at = render("pages/data_augmentation.py")
    noise = Image.frombytes("L", (64, 64), bytes(range(256)) * 16)
    out = io.BytesIO()
    noise.save(out, format="PNG")
    payload = io.BytesIO()
    with zipfile.ZipFile(payload, "w") as archive:
        for i in range(6):
            archive.writestr(f"cat/{i}.png", _png("L", 100))
            archive.writestr(f"dog/{i}.png", _png("LA", (100, 255)))
        archive.writestr("cat/broken.png", out.getvalue()[: len(out.getvalue()) // 2])  # truncated
        archive.writestr("dog/notes.txt", b"not an image")
        archive.writestr("dog/.DS_Store", b"junk")
    at.get("file_uploader")[0].set_value(("pets.zip", payload.getvalue(), "application/zip")).run()
    assert not at.exception and not at.error, [e.value for e in (*at.exception, *at.error)]
    (mixed,) = [w.value for w in at.warning if "LA" in w.value]
    assert mixed.startswith("⟦") and "⟦grayscale⟧" in mixed  # the target mode is a translated word too
    (broken,) = [w.value for w in at.warning if "broken" in str(w.proto.icon)]
    assert r"⟦cat/broken.png (⟦truncated⟧)⟧" in broken, broken  # the reason of ours, marked
    (table,) = [
        df.value for df in at.dataframe if len(df.value) == 3
    ]  # the skipped files, behind an expander
    assert all(why.startswith("⟦") for why in table.iloc[:, 1]), list(table.iloc[:, 1])
    data = [*DATA_RUN, "pets", "cat", "dog", "RGB", "L", "LA", "cat/broken.png", ".txt", ".DS_Store"]
    assert unmarked(at, data=data) == []


def test_the_augmentation_section_is_translated_everywhere(monkeypatch):
    monkeypatch.setattr(i18n, "language", lambda: PSEUDO)  # AppTest formats options again (see trained)
    at = render("pages/data_augmentation.py", {"section": "augmentation"})
    assert at.radio(key="data-section").value == "Augmentation"
    # Operations and their arguments are torchvision's names; the sample photos are scikit-learn's.
    ops = [*augment.OPS, *(arg for info in augment.OPS.values() for arg in info.defaults)]
    assert unmarked(at, data=[*DATA_RUN, *ops, *SAMPLE_PHOTOS, "RGB", "JSON", "min", "max"]) == []


def test_an_augmentation_error_is_translated_to_its_last_word(monkeypatch):
    """A range the builder refuses (RandomRotation's min above its max): the step, the argument and the
    problem are all the engine's templates, marked; only the numbers are data."""
    monkeypatch.setattr(i18n, "language", lambda: PSEUDO)  # AppTest formats options again (see trained)
    at = render("pages/data_augmentation.py", {"section": "augmentation"})
    at.selectbox(key="aug-add-op").set_value("RandomRotation")
    at.button(key="aug-add").click().run()
    at.number_input(key="aug-1-degrees-min").set_value(45.0).run()
    assert [e.value for e in at.error] and all(
        e.value.startswith("⟦⟦") and "⟦min 45 is larger than max 30; swap them.⟧" in e.value for e in at.error
    ), [e.value for e in at.error]
    ops = [*augment.OPS, *(arg for info in augment.OPS.values() for arg in info.defaults)]
    assert unmarked(at, data=[*DATA_RUN, *ops, *SAMPLE_PHOTOS, "RGB", "JSON", "min", "max"]) == []
