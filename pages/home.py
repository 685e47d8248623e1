"""Home: what cnndash does, the fastest first win (one click trains digits + LeNet), and the workflow with a
link to each page."""

import streamlit as st

import ui

ui.route_guard()
_ = ui.i18n.translator("common")


def _first_run() -> None:
    """The one-click first model. Home imports no engine to paint fast: the training code is loaded when
    the button is pressed, after the background imports (two importers of torchvision must not race)."""
    ui.wait_for_background_imports()
    from ui.training.first_run import start_first_run

    start_first_run()


st.title("cnndash")
st.markdown(
    _(
        "Learn and use **convolutional neural networks** end to end, in the browser: work out every shape, "
        "see what augmentation does, train on your own images, and inspect what the model learned. "
        "Every number is computed by PyTorch or checked against it."
    )
)

with st.container(border=True, key="home-first-run-box"):
    text_col, button_col = st.columns([3, 1], vertical_alignment="center")
    text_col.markdown(
        _(
            "**Your first model in seconds.** LeNet on the built-in handwritten `digits` reaches about "
            "**98 %** validation accuracy in about a minute on a CPU (seconds on a GPU); follow it live, "
            "then evaluate it and see where it looks."
        )
    )
    if button_col.button(
        _("Train digits + LeNet"),
        key="home-first-run",
        type="primary",
        icon=":material/play_arrow:",
        width="stretch",
    ):
        _first_run()

st.subheader(_("The workflow"))
steps = [
    (
        "learn",
        _("1 · Learn"),
        _("Ten small lessons: convolution step by step, padding, pooling, normalisation, classic nets."),
    ),
    (
        "calculator",
        _("2 · Conv calculator"),
        _("Output sizes, receptive field, params and MACs, and the exact layer where a stack breaks."),
    ),
    (
        "data",
        _("3 · Data"),
        _("Upload an image-folder zip or pick a built-in dataset; preview augmentations."),
    ),
    ("training", _("4 · Training"), _("One click: live loss and accuracy, on the GPU when there is one.")),
    (
        "evaluation",
        _("5 · Evaluation"),
        _("Confusion matrix, report, the images behind every mistake, suspicious labels."),
    ),
    ("gradcam", _("6 · Grad-CAM"), _("Where the model looks, per class and per layer.")),
]
columns = st.columns(len(steps))
for column, (key, title, text) in zip(columns, steps, strict=True):
    # "stretch": each card fills its column, and the columns of a row share the tallest card's height, so
    # the cards line up without a fixed height that cut longer texts (and their Open link) at some widths.
    with column.container(border=True, height="stretch", key=f"home-card-{key}"):
        st.markdown(f"**{title}**")
        st.caption(text)
        st.page_link(ui.PAGES[key], label=_("Open"), icon=":material/arrow_forward:")

st.info(
    _(
        "Everything works offline: the built-in datasets (`digits`, `shapes`) and sample photos ship with "
        "the app. Downloads of MNIST/CIFAR and pretrained weights are used when their files are present."
    ),
    icon=":material/wifi_off:",
)
