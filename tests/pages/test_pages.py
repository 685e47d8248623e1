"""AppTest: every page through the real navigation shows its title and its key widgets at their defaults,
and kept widgets (``ui.keep``) survive a trip to another page.

Note: AppTest runs a page whose ``url_path`` equals its file stem (``training``, ``evaluation``) straight
from ``pages/`` without ``app.py``, so sidebar checks use the other pages.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from cnndash import data
from cnndash.device import describe_device
from cnndash.training.auto import auto_config
from cnndash.training.loops import TrainConfig
from tests.conftest import ROOT

TITLES = {
    "pages/home.py": "cnndash",
    "pages/conv_calculator.py": "Conv calculator",
    "pages/data_augmentation.py": "Data & augmentation",
    "pages/training.py": "Training",
    "pages/evaluation.py": "Evaluation",
    "pages/grad_cam.py": "Grad-CAM",
}
PAGE_FILES = list(TITLES)
# Training page widget -> the TrainConfig field it edits (the widget starts at that field's default).
TRAINING_SETTINGS = {
    "train-model": "model",
    "train-epochs": "epochs",
    "train-batch-size": "batch_size",
    "train-optimizer": "optimizer",
    "train-lr": "lr",
    "train-schedule": "schedule",
    "train-weight-decay": "weight_decay",
    "train-label-smoothing": "label_smoothing",
    "train-grad-clip": "grad_clip",
    "train-early-stopping": "early_stopping",
    "train-warmup": "warmup_epochs",
    "train-seed": "seed",
    "train-device": "device",
    "train-val-fraction": "val_fraction",
    "train-pretrained": "pretrained",
    "train-transfer": "transfer",
}


def run_page(page: str, timeout: float = 60) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=timeout)
    at.run()
    if page != "pages/home.py":
        at.switch_page(page)
        at.run()
    return at


def switch(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    return at.run()


def widget(at: AppTest, key: str):
    """The widget with this key, whatever its kind."""
    for kind in ("selectbox", "number_input", "slider", "checkbox", "radio", "toggle", "multiselect"):
        for element in getattr(at, kind):
            if element.key == key:
                return element
    raise AssertionError(f"no widget with key {key!r}")


@pytest.mark.parametrize("page", PAGE_FILES)
def test_page_shows_its_title_without_errors(page):
    at = run_page(page)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [t.value for t in at.title] == [TITLES[page]]


def test_home_links_every_page_in_workflow_order():
    at = run_page("pages/home.py")
    links = at.get("page_link")
    assert [link.proto.page for link in links] == [
        "learn",
        "calculator",
        "data",
        "training",
        "evaluation",
        "gradcam",
    ]
    assert {link.proto.label for link in links} == {"Open"}


def test_home_trains_the_first_model_in_one_click():
    """Issue 23: the fastest first win (digits + LeNet) is one click from Home, followed on Training."""
    from cnndash.jobs.registry import get_registry

    at = switch(run_page("pages/home.py"), "pages/home.py")  # a page AppTest knows it is on, for the click
    assert "98 %" in at.markdown[1].value
    at.button(key="home-first-run").click().run()
    job = get_registry().active()
    try:
        assert not at.exception, [e.value for e in at.exception]
        assert job is not None and (job.config.dataset, job.config.model) == ("digits", "lenet")
        # The one-click suggestion for digits, the Training form's and the CLI's (about 98 % on digits).
        assert job.config.epochs == auto_config(TrainConfig(dataset="digits")).config.epochs
        assert at.title[0].value == "Training"  # the page switched to Training, which shows the run live
        form = (at.selectbox(key="train-dataset").value, at.selectbox(key="train-model").value)
        assert form == ("digits", "lenet")
        assert any(job.run_name in s.value for s in at.subheader)
    finally:
        if job is not None:
            job.stop()
            assert job.wait(60)


def test_sidebar_shows_the_device_and_no_active_run():
    at = run_page("pages/home.py")
    info = describe_device()
    assert [m.value for m in at.sidebar.markdown] == [f"**{info.kind.upper()}** — {info.description}"]
    assert [c.value for c in at.sidebar.caption] == ["Compute device"]


def test_calculator_starts_on_a_conv2d_layer():
    at = run_page("pages/conv_calculator.py")
    assert [t.label for t in at.tabs] == ["Single layer", "Layer stack", "Kernel playground"]
    assert at.radio(key="conv-layer").value == "Conv2d"
    assert (at.number_input(key="conv-in-h").value, at.number_input(key="conv-in-w").value) == (37, 50)
    shapes = {m.label: m.value for m in at.tabs[0].metric}
    assert shapes["Output shape"] == "8×35×48"  # 3×3 kernel, stride 1, no padding: 37−2 × 50−2
    assert at.selectbox(key="stack-preset").value == "LeNet-5 (1×28×28)"


def test_data_page_starts_on_shapes_at_the_training_split():
    at = run_page("pages/data_augmentation.py")
    assert at.radio(key="data-section").value == "Datasets"
    assert at.selectbox(key="data-dataset").value == "shapes"
    assert at.slider(key="data-val-fraction").value == TrainConfig.val_fraction
    assert at.selectbox(key="data-dataset").options[: len(data.BUILTIN_DATASETS)] == [
        f"{name} — built-in" for name in data.BUILTIN_DATASETS
    ]


def test_training_settings_start_at_trainconfig_defaults_or_the_suggestion():
    at = run_page("pages/training.py")
    # The settings the one-click suggestion chooses start at its choice for the dataset; the others at
    # TrainConfig's defaults.
    defaults = auto_config(TrainConfig(dataset="digits")).config
    assert at.selectbox(key="train-dataset").value == next(iter(data.BUILTIN_DATASETS))
    for key, field in TRAINING_SETTINGS.items():
        assert widget(at, key).value == getattr(defaults, field), key
    assert at.number_input(key="train-image-size").value == (defaults.image_size or 0)
    assert at.selectbox(key="train-pipeline").value == "(none)"


@pytest.mark.parametrize(
    ("page", "message"),
    [
        ("pages/evaluation.py", "No training runs yet"),
        ("pages/grad_cam.py", "No trained run with a checkpoint"),
    ],
)
def test_pages_without_runs_point_to_training(page, message):
    at = run_page(page)
    assert any(message in i.value for i in at.info)
    assert [link.proto.page for link in at.get("page_link")] == ["training"]


def test_kept_widgets_survive_a_trip_to_another_page():
    at = run_page("pages/data_augmentation.py")
    at.selectbox(key="data-dataset").set_value("digits")
    at.slider(key="data-val-fraction").set_value(0.5).run()
    at.radio(key="data-section").set_value("Augmentation").run()
    at.number_input(key="aug-seed").set_value(7).run()
    switch(at, "pages/conv_calculator.py")
    assert not at.exception
    switch(at, "pages/data_augmentation.py")
    assert at.radio(key="data-section").value == "Augmentation"
    assert at.number_input(key="aug-seed").value == 7
    at.radio(key="data-section").set_value("Datasets").run()
    assert at.selectbox(key="data-dataset").value == "digits"
    assert at.slider(key="data-val-fraction").value == 0.5
    assert {m.label: m.value for m in at.metric}["Classes"] == "10"


def test_training_settings_survive_a_trip_to_another_page():
    at = run_page("pages/training.py")
    at.selectbox(key="train-optimizer").set_value("sgd").run()
    at.number_input(key="train-epochs").set_value(3).run()
    switch(at, "pages/home.py")
    switch(at, "pages/training.py")
    assert at.number_input(key="train-epochs").value == 3
    assert at.selectbox(key="train-optimizer").value == "sgd"
    assert at.number_input(key="train-lr").value == pytest.approx(0.05)


def test_a_kept_choice_that_no_longer_exists_falls_back_to_the_default(tmp_path):
    root = data.datasets_dir()
    for name in ("a", "b"):
        (root / "mini" / name).mkdir(parents=True)
        for i in range(4):
            (root / "mini" / name / f"{i}.png").write_bytes(_png(i * 40))
    at = run_page("pages/data_augmentation.py")
    at.selectbox(key="data-dataset").set_value("mini").run()
    assert {m.label: m.value for m in at.metric}["Classes"] == "2"
    switch(at, "pages/home.py")
    data.delete_dataset("mini")
    switch(at, "pages/data_augmentation.py")
    assert not at.exception, [e.value for e in at.exception]
    assert at.selectbox(key="data-dataset").value == "shapes"


def _png(gray: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), gray).save(buffer, format="PNG")
    return buffer.getvalue()
