"""AppTest: the conv calculator page reacts to its controls, explains invalid settings, traces stacks."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from tests.pages.test_pages import run_page


@pytest.fixture(scope="module")
def calculator() -> AppTest:
    at = run_page("pages/conv_calculator.py")
    assert not at.exception, [e.value for e in at.exception]
    return at


def _metric(at: AppTest, label: str, tab: int = 0) -> str:
    """A metric's value in the Single layer (0) or Layer stack (1) tab."""
    return next(m.value for m in at.tabs[tab].metric if m.label == label)


def _latex(at: AppTest) -> list[str]:
    return [element.value for element in at.latex]


def _reset(at: AppTest) -> AppTest:
    at.radio(key="conv-layer").set_value("Conv2d").run()
    for key, value in (
        ("conv-in-h", 37),
        ("conv-in-w", 50),
        ("conv-kernel-h", 3),
        ("conv-kernel-w", 3),
        ("conv-stride", 1),
        ("conv-dilation", 1),
        ("conv-groups", 1),
    ):
        at.number_input(key=key).set_value(value)
    at.radio(key="conv-padding-mode").set_value("number")
    at.run()
    at.number_input(key="conv-padding").set_value(0).run()
    assert not at.exception and not at.tabs[0].error
    return at


def test_stride_padding_dilation_update_formula_and_shape(calculator):
    at = _reset(calculator)
    assert _metric(at, "Output shape") == "8×35×48"
    at.number_input(key="conv-stride").set_value(2).run()
    assert _metric(at, "Output shape") == "8×18×24"
    at.number_input(key="conv-padding").set_value(1).run()
    assert _metric(at, "Output shape") == "8×19×25"
    at.number_input(key="conv-dilation").set_value(2).run()
    assert not at.exception
    height, width = _latex(at)
    assert r"37 + 2\cdot 1 - 2\cdot(3-1) - 1}{2}" in height and height.rstrip("$\n ").endswith("= 18")
    assert r"50 + 2\cdot 1 - 2\cdot(3-1) - 1}{2}" in width and width.rstrip("$\n ").endswith("= 24")
    assert _metric(at, "Output shape") == "8×18×24"
    assert _metric(at, "Receptive field") == "5×5"
    assert _metric(at, "Parameters") == f"{8 * 3 * 9 + 8:,}"


def test_same_padding_and_window_picture(calculator):
    at = _reset(calculator)
    at.radio(key="conv-padding-mode").set_value("same").run()
    assert _metric(at, "Output shape") == "8×37×50"
    assert "same" in _latex(at)[0]
    at.slider(key="window-row").set_value(5).run()
    at.slider(key="window-col").set_value(7).run()
    assert not at.exception
    at.number_input(key="conv-stride").set_value(2).run()
    assert at.error and "stride" in at.error[0].value and "**Stride**" in at.error[0].value
    assert not at.exception


@pytest.mark.parametrize(
    ("changes", "control"),
    [
        ({"conv-kernel-h": 60}, "**Kernel height**"),
        ({"conv-kernel-w": 7, "conv-dilation": 9}, "**Kernel width**"),
        ({"conv-groups": 2}, "**Groups**"),  # 3 input channels do not split into 2 groups
    ],
)
def test_invalid_conv_combination_shows_error_naming_the_control(calculator, changes, control):
    at = _reset(calculator)
    for key, value in changes.items():
        at.number_input(key=key).set_value(value)
    at.run()
    assert not at.exception
    assert len(at.error) == 1
    assert control in at.error[0].value
    assert not [m for m in at.tabs[0].metric if m.label == "Output shape"]


def test_pool_padding_rule_and_transposed_output_padding(calculator):
    at = _reset(calculator)
    at.radio(key="conv-layer").set_value("MaxPool2d").run()
    assert "conv-groups" not in [n.key for n in at.number_input]
    at.number_input(key="conv-padding").set_value(2).run()
    assert "half the kernel" in at.error[0].value and "**Padding**" in at.error[0].value
    at.number_input(key="conv-padding").set_value(1)
    at.number_input(key="conv-stride").set_value(2).run()
    at.checkbox(key="conv-ceil-mode").check().run()
    assert not at.error and _metric(at, "Output shape") == "3×19×26"
    at.radio(key="conv-layer").set_value("AvgPool2d").run()
    assert "conv-dilation" not in [n.key for n in at.number_input]
    at.radio(key="conv-layer").set_value("ConvTranspose2d").run()
    at.number_input(key="conv-stride").set_value(2)
    at.number_input(key="conv-output-padding").set_value(2).run()
    assert "**Output padding**" in at.error[0].value
    at.number_input(key="conv-output-padding").set_value(1).run()
    assert not at.error and not at.exception
    # (37 − 1)·2 − 2·1 + (3 − 1) + 1 + 1 = 74
    assert _metric(at, "Output shape") == "8×74×100"


def test_layer_stack_presets_trace_and_breaking_input_is_diagnosed(calculator):
    at = calculator
    assert any("1×10" in s.value for s in at.success)
    at.selectbox(key="stack-preset").set_value("VGG-16 (3×224×224)").run()
    assert not at.exception
    assert _metric(at, "Parameters", tab=1) == "138,357,544"
    assert any("1×1000" in s.value for s in at.success)
    at.selectbox(key="stack-preset").set_value("LeNet-5 (1×28×28)").run()
    assert at.number_input(key="stack-in-h").value == 28
    at.number_input(key="stack-in-h").set_value(32)
    at.number_input(key="stack-in-w").set_value(32).run()
    assert not at.exception
    message = " ".join(e.value for e in at.error)
    assert "expects 400 input features" in message
    assert "16×6×6 = 576" in message and "in_features=576" in message
    assert "resize the input to 31×31" in message  # the nearest size that gives 16×5×5
    table = at.tabs[1].dataframe[-1].value  # [0] is the editor
    assert list(table["layer"])[-1] == "7" and "fails" in list(table["output shape"])[-1]
    assert list(table["output shape"])[:7] == ["1×6×32×32", "1×6×32×32", "1×6×16×16", "1×16×12×12",
                                               "1×16×12×12", "1×16×6×6", "1×576"]  # fmt: skip
    # The export is refused while the trace fails, and the code says it does not run.
    download = at.tabs[1].get("download_button")[0]
    assert download.proto.disabled
    code = at.tabs[1].code[0].value
    assert "DOES NOT RUN" in code and "WARNING: this stack fails with a shape error" in code
    at.number_input(key="stack-in-h").set_value(28)
    at.number_input(key="stack-in-w").set_value(28).run()
    assert not at.tabs[1].get("download_button")[0].proto.disabled
    code = at.tabs[1].code[0].value
    assert "DOES NOT RUN" not in code and code.startswith('"""LeNet-5 (1×28×28) — exported')


def test_an_exported_stack_carries_a_working_title_or_says_it_is_edited():
    from cnndash import stack as layers

    stack = [{"layer": "Conv2d", "out": 4, "kernel": "3"}]
    code = layers.stack_code(stack, (1, 8, 8), title='My "net"')
    assert code.startswith('"""My \'net\' — exported from cnndash."""')
    broken = layers.stack_code(stack, (1, 2, 2), title="x", failure="kernel 3 > input 2")
    assert "DOES NOT RUN on input (1, 2, 2)" in broken and "# WARNING" in broken


def _image_captions(at: AppTest) -> list[str]:
    return [image.proto.imgs[0].caption for image in at.tabs[2].get("image")]


def test_kernel_playground_stride_halves_the_output(calculator):
    at = calculator
    at.number_input(key="kernel-stride").set_value(1)
    at.number_input(key="kernel-padding").set_value(1)
    at.selectbox(key="kernel-name").set_value("Sobel x").run()
    assert not at.exception
    assert _image_captions(at) == ["input 214×320", "output 214×320"]  # scikit-learn's china.jpg, downscaled
    at.number_input(key="kernel-stride").set_value(2).run()
    assert _image_captions(at)[1] == "output 107×160"
    at.number_input(key="kernel-dilation").set_value(3)
    at.toggle(key="kernel-grayscale").set_value(True).run()
    assert not at.exception
    assert _image_captions(at)[1] == "output 105×158"  # (214 + 2 − 7) // 2 + 1
    at.number_input(key="kernel-padding").set_value(0)
    at.number_input(key="kernel-dilation").set_value(16)
    at.number_input(key="kernel-stride").set_value(1)
    at.selectbox(key="kernel-photo").set_value("flower.jpg").run()
    assert not at.exception


def test_next_position_steps_the_window_row_by_row(calculator):
    at = _reset(calculator)
    at.number_input(key="conv-in-h").set_value(3)
    at.number_input(key="conv-in-w").set_value(4)
    at.number_input(key="conv-kernel-h").set_value(2)
    at.number_input(key="conv-kernel-w").set_value(2).run()  # output 2×3
    at.slider(key="window-row").set_value(0)
    at.slider(key="window-col").set_value(1).run()
    at.button(key="window-next").click().run()
    assert (at.slider(key="window-row").value, at.slider(key="window-col").value) == (0, 2)
    at.button(key="window-next").click().run()
    assert (at.slider(key="window-row").value, at.slider(key="window-col").value) == (1, 0)
    at.slider(key="window-col").set_value(2).run()
    at.button(key="window-next").click().run()  # wraps around
    assert (at.slider(key="window-row").value, at.slider(key="window-col").value) == (0, 0)
    assert not at.exception


def test_kernel_playground_decodes_uploads_or_names_the_bad_file():
    at = run_page("pages/conv_calculator.py")
    at.radio(key="kernel-source").set_value("Upload").run()
    at.get("file_uploader")[0].set_value(("notes.png", b"not an image", "image/png")).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("notes.png" in e.value and "not an image" in e.value for e in at.error)
    buffer = io.BytesIO()
    Image.new("RGBA", (640, 100), (0, 0, 255, 0)).save(buffer, format="PNG")  # wide and transparent
    at.get("file_uploader")[0].set_value(("wide.png", buffer.getvalue(), "image/png"))
    at.number_input(key="kernel-padding").set_value(1).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert _image_captions(at) == ["input 50×320", "output 50×320"]  # shrunk to a 320 px long side
    at.toggle(key="kernel-grayscale").set_value(True).run()
    assert _image_captions(at) == ["input 50×320", "output 50×320"]


def test_stack_flags_are_filled_only_where_the_layer_has_them(calculator):
    """bias on Conv2d / ConvTranspose2d / Linear rows, ceil_mode on pooling rows; blank elsewhere."""
    from cnndash import stack as layers

    editor = calculator.tabs[1].dataframe[0].value
    for _, row in editor.iterrows():
        uses = layers.USES[row["layer"]]
        assert (row["bias"] in ("yes", "no")) == ("bias" in uses), row["layer"]
        assert (row["ceil_mode"] in ("yes", "no")) == ("ceil_mode" in uses), row["layer"]
    assert "MaxPool2d" in set(editor["layer"]) or "AvgPool2d" in set(editor["layer"])
    assert not any("Ignored" in c.value for c in calculator.tabs[1].caption)


def test_a_broken_stack_keeps_no_stale_note_or_count():
    """Issue 23: "padding 2 keeps 28×28" and the parameter count stayed after the stack broke."""
    from cnndash import stack as layers

    at = run_page("pages/conv_calculator.py")
    note = layers.PRESETS["LeNet-5 (1×28×28)"].note
    assert note in [c.value for c in at.tabs[1].caption]
    assert _metric(at, "Parameters", tab=1) == "61,706"
    at.number_input(key="stack-in-h").set_value(32)
    at.number_input(key="stack-in-w").set_value(32).run()
    assert at.tabs[1].error  # the shape error is shown …
    assert note not in [c.value for c in at.tabs[1].caption]  # … and the preset's note, now false, is not
    assert (_metric(at, "Parameters", tab=1), _metric(at, "MACs", tab=1)) == ("—", "—")
    at.number_input(key="stack-in-h").set_value(28)
    at.number_input(key="stack-in-w").set_value(28).run()
    assert note in [c.value for c in at.tabs[1].caption] and _metric(at, "Parameters", tab=1) == "61,706"
