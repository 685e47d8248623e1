"""Home: what cnndash does and the workflow, with a link to each page."""

import streamlit as st

import ui

ui.route_guard()


st.title("cnndash")
st.markdown(
    "Learn and use **convolutional neural networks** end to end, in the browser: work out every shape, "
    "see what augmentation does, train on your own images, and inspect what the model learned. "
    "Every number is computed by PyTorch or checked against it."
)

st.subheader("The workflow")
steps = [
    (
        "calculator",
        "1 · Conv calculator",
        "Kernel, stride, padding, dilation: output sizes, receptive field, params and MACs, and the exact layer where a stack breaks.",
    ),
    (
        "data",
        "2 · Data & augmentation",
        "Upload an image-folder zip or pick a built-in dataset; build an augmentation pipeline and preview it.",
    ),
    (
        "training",
        "3 · Training",
        "One click: live loss and accuracy, on the GPU when there is one. Stop and resume any time.",
    ),
    (
        "evaluation",
        "4 · Evaluation",
        "Confusion matrix, classification report, and the images behind every mistake.",
    ),
    ("gradcam", "5 · Grad-CAM", "Where the model looks, per class and per layer."),
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
