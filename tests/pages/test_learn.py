"""AppTest: the Learn page — every lesson's widgets, its numbers against the engine, and no traceback for
any extreme setting (invalid ones explain themselves)."""

from __future__ import annotations

import shutil

import pytest
from streamlit.testing.v1 import AppTest

from cnndash.lessons import learn_kernel, networks
from cnndash.stack.presets import PRESETS
from tests.conftest import ROOT

PAGE = "pages/learn.py"
LESSONS = [
    "1 · Cross-correlation step by step",
    "2 · Learning a kernel",
    "3 · Padding and stride",
    "4 · Channels",
    "5 · Convolution as matrix multiplication",
    "6 · Pooling",
    "7 · Normalisation layers",
    "8 · Dropout in train and eval",
    "9 · Classic networks",
    "10 · What a trained network sees",
]


@pytest.fixture(scope="module")
def learn() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def lesson(at: AppTest, name: str) -> AppTest:
    at.selectbox(key="learn-lesson").set_value(name).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def latex(at: AppTest, index: int) -> str:
    return at.latex[index].value.strip("$\n")


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def test_page_lists_every_lesson_and_opens_on_the_first(learn):
    assert learn.selectbox(key="learn-lesson").options == LESSONS
    assert learn.title[0].value == "Learn"


def test_cross_correlation_steps_through_the_tutorial_example(learn):
    at = lesson(learn, LESSONS[0])
    assert latex(at, 1).endswith("= 19")  # 0·0 + 1·1 + 3·2 + 4·3
    at.slider(key="learn-corr-step").set_value(3).run()
    assert latex(at, 1).endswith("= 43")
    assert any("nn.Conv2d" in text for text in successes(at))
    assert not at.error


def test_editing_a_cell_changes_the_sum_and_an_empty_cell_is_explained(learn):
    at = lesson(learn, LESSONS[0])
    at.slider(key="learn-corr-step").set_value(0).run()
    edit = {"edited_rows": {1: {"1": 5.0}}, "added_rows": [], "deleted_rows": []}  # X[1,1]: 4 → 5
    at.session_state["learn-corr-x-0"] = edit
    at.run()
    assert latex(at, 1).endswith("= 22")
    at.session_state["learn-corr-x-0"] = {
        "edited_rows": {0: {"1": None}},
        "added_rows": [],
        "deleted_rows": [],
    }
    at.run()
    assert not at.exception
    assert any("row 0, column 1" in text for text in errors(at))
    added = {"edited_rows": {}, "added_rows": [{"0": 9.0, "1": 10.0, "2": 11.0}], "deleted_rows": []}
    at.session_state["learn-corr-x-0"] = added  # a fourth row: Y grows to 3×2, six windows
    at.run()
    assert not at.error
    assert at.slider(key="learn-corr-step").max == 5
    at.session_state["learn-corr-x-0"] = {"edited_rows": {}, "added_rows": [{"0": 9.0}], "deleted_rows": []}
    at.run()
    assert any("row 3, column 1" in text for text in errors(at))
    at.session_state["learn-corr-x-0"] = {"edited_rows": {}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.error


def test_other_starting_grids(learn):
    at = lesson(learn, LESSONS[0])
    for start in at.selectbox(key="learn-corr-start").options:
        at.selectbox(key="learn-corr-start").set_value(start).run()
        assert not at.exception and not at.error, start
    at.selectbox(key="learn-corr-start").set_value(at.selectbox(key="learn-corr-start").options[0]).run()


def test_learning_rate_too_high_diverges_visibly(learn):
    at = lesson(learn, LESSONS[1])
    at.select_slider(key="learn-kernel-lr").set_value(0.1).run()
    (message,) = errors(at)
    diverged = learn_kernel.learn_kernel(0.1, 10).diverged_at
    assert "Diverged" in message and f"step {diverged}" in message and "0.0333" in message
    assert "nan" not in " ".join(m.value for m in at.metric).lower()
    at.select_slider(key="learn-kernel-lr").set_value(0.034).run()  # just over the limit: grows slowly
    (message,) = errors(at)
    assert message.startswith("Diverging") and "×1.0" in message
    at.select_slider(key="learn-kernel-lr").set_value(0.03).run()
    at.slider(key="learn-kernel-steps").set_value(60).run()
    assert not at.error
    learned = next(m.value for m in at.metric if m.label == "Learned kernel")
    assert learned == "[1.000, -1.000]"


def test_padding_and_stride_formula_and_invalid_sizes(learn):
    at = lesson(learn, LESSONS[2])
    assert latex(at, 0).endswith("= 4")  # 8, k 3, p 1, s 2
    assert any("nn.Conv2d` returns 4×4" in c.value for c in at.caption)
    assert len(at.dataframe[0].value) == 4
    at.slider(key="learn-pad-size").set_value(2).run()
    at.slider(key="learn-pad-kernel").set_value(7).run()
    assert any("larger than the padded input" in text for text in errors(at))
    at.slider(key="learn-pad-size").set_value(8).run()
    at.slider(key="learn-pad-kernel").set_value(3).run()
    assert not at.error


def test_channels_and_unfold_agree_with_torch(learn):
    at = lesson(learn, LESSONS[3])
    at.slider(key="learn-ch-in").set_value(3).run()
    at.slider(key="learn-ch-out").set_value(3).run()
    at.radio(key="learn-ch-show").set_value(2).run()
    assert len(successes(at)) == 2 and not at.error
    at.slider(key="learn-ch-out").set_value(1).run()  # the shown channel 2 no longer exists
    assert not at.exception and not at.error
    at = lesson(at, LESSONS[4])
    at.slider(key="learn-mm-in").set_value(2).run()
    at.slider(key="learn-mm-padding").set_value(1).run()
    assert any("F.conv2d" in text for text in successes(at))
    at.slider(key="learn-mm-size").set_value(2).run()
    at.slider(key="learn-mm-padding").set_value(0).run()
    at.slider(key="learn-mm-kernel").set_value(4).run()
    assert errors(at) and not at.exception


def test_pooling_settings_and_padding_limit(learn):
    at = lesson(learn, LESSONS[5])
    at.radio(key="learn-pool-mode").set_value("avg").run()
    at.slider(key="learn-pool-stride").set_value(2).run()
    assert any("nn.AvgPool2d(2, 2, 0)" in text for text in successes(at))
    at.slider(key="learn-pool-padding").set_value(2).run()
    assert any("at most half the kernel" in text for text in errors(at))
    at.slider(key="learn-pool-padding").set_value(0).run()
    assert any(m.label == "Cells unchanged by the shift" for m in at.metric)


def test_normalisation_layers_and_groups(learn):
    at = lesson(learn, LESSONS[6])
    for kind in ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"):
        at.radio(key="learn-norm-kind").set_value(kind).run()
        assert not at.error, kind
        assert len(successes(at)) == 3, kind  # the layer, running mean, running var
    at.slider(key="learn-norm-groups").set_value(3).run()
    assert any("split evenly" in text for text in errors(at))
    at.slider(key="learn-norm-groups").set_value(2).run()

    def gap() -> float:
        return float(next(m.value for m in at.metric if "train vs eval" in m.label))

    lagging = gap()
    at.slider(key="learn-norm-momentum").set_value(1.0).run()
    # momentum 1: the running stats are the last batch's own (the variance unbiased, so not exactly)
    assert gap() < 0.1 < lagging


def test_dropout_masks_and_eval(learn):
    at = lesson(learn, LESSONS[7])
    at.slider(key="learn-drop-p").set_value(0.9).run()
    assert any(r"10\,x" in latex.value for latex in at.latex)  # 1/(1 − 0.9)
    at.slider(key="learn-drop-p").set_value(0.0).run()
    assert not at.exception and not at.error


@pytest.mark.parametrize("name", list(networks.NETWORKS))
def test_each_classic_network_shows_its_trace(learn, name):
    at = lesson(learn, LESSONS[8])
    at.radio(key="learn-net").set_value(name).run()
    assert not at.exception
    params = next(m.value for m in at.metric if m.label == "Parameters")
    assert params == f"{networks.trace_network(name).trace.total_params:,}"
    assert len(at.dataframe[0].value) == len(networks.trace_network(name).trace.rows)
    if name == "VGG-16":
        assert "4097" in at.warning[0].value


def test_open_in_layer_stack_editor_loads_the_preset():
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.session_state["learn-lesson"] = LESSONS[8]
    at.session_state["learn-net"] = "AlexNet"
    at.switch_page(PAGE)
    at.run()
    at.button(key="learn-net-open").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["stack-preset"] == networks.NETWORKS["AlexNet"].preset
    assert at.selectbox(key="stack-preset").value == "AlexNet (3×224×224)"
    assert at.number_input(key="stack-in-h").value == PRESETS["AlexNet (3×224×224)"].input_shape[1]


def test_trained_network_lesson_without_runs_points_to_training(learn):
    at = lesson(learn, LESSONS[9])
    assert "No trained run" in at.info[0].value
    assert not at.error


def test_trained_network_lesson_shows_filters_and_maps(tmp_path, monkeypatch, tiny_run):
    shutil.copytree(tiny_run, tmp_path / "runs" / "tiny")
    monkeypatch.setenv("CNNDASH_RUNS_DIR", str(tmp_path / "runs"))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.session_state["learn-lesson"] = LESSONS[9]
    at.switch_page(PAGE)
    at.run()
    assert not at.exception and not at.error
    captions = [image.proto.imgs[0].caption for image in at.get("image")]
    assert any("filters" in c for c in captions) and any("feature maps" in c for c in captions)
    at.number_input(key="learn-run-index").set_value(5).run()
    assert not at.exception and not at.error


@pytest.mark.parametrize("name", LESSONS[:8])
def test_no_traceback_at_any_slider_extreme(learn, name):
    """Every slider of the lesson at its minimum and at its maximum, one after another."""
    at = lesson(learn, name)
    keys = [s.key for s in at.slider if s.key]
    for key in keys:
        for end in ("min", "max"):
            widget = next((s for s in at.slider if s.key == key), None)
            if widget is None or widget.disabled:  # hidden by an earlier extreme (a 1-wide range)
                continue
            widget.set_value(getattr(widget, end)).run()
            assert not at.exception, (key, end, [e.value for e in at.exception])
