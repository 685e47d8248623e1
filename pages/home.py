"""Home: what cnndash does, the fastest first win (one click trains digits + LeNet), and the workflow with a
link to each page."""

import streamlit as st

import ui

ui.route_guard()


def _first_run() -> None:
    """The one-click first model. Home imports no engine to paint fast: the training code is loaded when
    the button is pressed, after the background imports (two importers of torchvision must not race)."""
    ui.wait_for_background_imports()
    from ui.training.first_run import start_first_run

    start_first_run()


st.title("cnndash")
st.markdown(
    "Learn and use **convolutional neural networks** end to end, in the browser: work out every shape, "
    "see what augmentation does, train on your own images, and inspect what the model learned. "
    "Every number is computed by PyTorch or checked against it."
)

with st.container(border=True, key="home-first-run-box"):
    text_col, button_col = st.columns([3, 1], vertical_alignment="center")
    text_col.markdown(
        "**Your first model in seconds.** LeNet on the built-in handwritten `digits` reaches about **98 %** "
        "validation accuracy in about a minute on a CPU (seconds on a GPU); follow it live, then evaluate it "
        "and see where it looks."
    )
    if button_col.button(
        "Train digits + LeNet",
        key="home-first-run",
        type="primary",
        icon=":material/play_arrow:",
        width="stretch",
    ):
        _first_run()

st.subheader("The workflow")
steps = [
    (
        "learn",
        "1 · Learn",
        "Ten small lessons: convolution step by step, padding, pooling, normalisation, classic nets.",
    ),
    (
        "calculator",
        "2 · Conv calculator",
        "Output sizes, receptive field, params and MACs, and the exact layer where a stack breaks.",
    ),
    ("data", "3 · Data", "Upload an image-folder zip or pick a built-in dataset; preview augmentations."),
    ("training", "4 · Training", "One click: live loss and accuracy, on the GPU when there is one."),
    (
        "evaluation",
        "5 · Evaluation",
        "Confusion matrix, report, the images behind every mistake, suspicious labels.",
    ),
    ("gradcam", "6 · Grad-CAM", "Where the model looks, per class and per layer."),
]
columns = st.columns(len(steps))
for column, (key, title, text) in zip(columns, steps, strict=True):
    # "stretch": each card fills its column, and the columns of a row share the tallest card's height, so
    # the cards line up without a fixed height that cut longer texts (and their Open link) at some widths.
    with column.container(border=True, height="stretch", key=f"home-card-{key}"):
        st.markdown(f"**{title}**")
        st.caption(text)
        st.page_link(ui.PAGES[key], label="Open", icon=":material/arrow_forward:")

st.info(
    "Everything works offline: the built-in datasets (`digits`, `shapes`) and sample photos ship with "
    "the app. Downloads of MNIST/CIFAR and pretrained weights are used when their files are present.",
    icon=":material/wifi_off:",
)
