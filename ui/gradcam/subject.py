"""What the Grad-CAM page explains and how: the chosen run (:class:`Subject`: its model, dataset and CAM
layers, loaded and cached per checkpoint by :func:`load_subject`), the image (:class:`Picture`) and the
controls' values (:class:`Settings`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st
from PIL import Image

import ui
from cnndash.data import ImageSet
from cnndash.explain import cam
from cnndash.explain.default_layer import run_default_layer
from cnndash.explain.target_layers import spread_layers
from cnndash.plots import gradcam as plots_cam
from cnndash.runs import Run
from ui import i18n

_ = i18n.translator("gradcam")

LAYER_PICKS = 4  # layers compared by default, spread from early to late and ending with the last one


@dataclass
class Subject:
    """The chosen run with what every view needs: its model, dataset, classes and CAM layers."""

    run: Run
    fingerprint: str  # ui.run_results_key: the key of everything cached from its weights and data
    model: Any  # the trained torch module; the page only hands it to cnndash
    dataset: ImageSet
    classes: list[str]
    layers: dict[str, cam.LayerInfo]  # candidate CAM layers by name, in execution order
    default_layer: str
    default_reason: str = ""  # why the default layer was chosen

    @property
    def size(self) -> int:
        return self.run.image_size

    @property
    def layer_names(self) -> list[str]:
        return list(self.layers)

    def layer_picks(self) -> list[str]:
        return spread_layers(self.layer_names, LAYER_PICKS)

    def layer_label(self, name: str) -> str:
        info = self.layers[name]
        shape = "×".join(map(str, info.output_shape))
        label = f"{name}  ({info.kind}, {shape})"
        return label + "  — " + _("default") if name == self.default_layer else label


@dataclass
class Picture:
    """The image being explained, as the model takes it (``x``) and sees it (``seen``, RGB)."""

    image: Image.Image
    caption: str
    true_label: int | None
    x: Any  # the preprocessed (1, C, S, S) input; the page only hands it to cnndash
    seen: np.ndarray
    shown: str = ""  # the caption as the page shows it (Markdown-escaped, in the reader's language)

    @property
    def stem(self) -> str:
        """The caption as a file-name part: letters, digits, '.', '_' and '-' only."""
        return re.sub(r"[^A-Za-z0-9._-]+", "-", Path(self.caption).stem).strip("-.") or "image"


@dataclass
class Settings:
    method: str
    layer: str
    target: int  # the class the maps explain
    cmap: str
    alpha: float

    def overlay(self, seen: np.ndarray, cam_map: np.ndarray) -> np.ndarray:
        return plots_cam.overlay(seen, cam_map, self.cmap, self.alpha)


# --------------------------------------------------------------------------------------------------
# Cached engine calls, keyed by the checkpoint's fingerprint and the run's data (ui.run_results_key)


@st.cache_resource(show_spinner=False, max_entries=8)
def _layers(run_path: str, fingerprint: str, input_shape: tuple[int, int, int], _model) -> list:
    return cam.candidate_layers(_model, input_shape)


@st.cache_resource(
    show_spinner=False, max_entries=8
)  # the spinner is load_subject's, in the reader's language
def _default_layer(run_path: str, fingerprint: str, _run: Run, _model, _dataset, _layers: tuple) -> tuple:
    """The last spatial layer whose Grad-CAM for the predicted class is not flat on a few validation
    images, and why; computed once per checkpoint (a handful of forward/backward passes)."""
    return run_default_layer(_run, _model, _dataset, _layers)


def load_subject(run: Run) -> Subject:
    """``run`` with its best checkpoint's model, its dataset and its CAM layers (the default one chosen)."""
    model = ui.load_model(run, "best")
    dataset = ui.run_dataset(run)
    fingerprint = ui.run_results_key(run)  # the best checkpoint and the data it is explained on
    input_shape = (run.in_channels, run.image_size, run.image_size)
    layers = {info.name: info for info in _layers(str(run.path), fingerprint, input_shape, model)}
    with st.spinner(_("Choosing an informative layer…")):
        default, reason = _default_layer(
            str(run.path), fingerprint, run, model, dataset, tuple(layers.values())
        )
    return Subject(
        run=run,
        fingerprint=fingerprint,
        model=model,
        dataset=dataset,
        classes=list(run.classes or dataset.classes),
        layers=layers,
        default_layer=default,
        default_reason=reason,
    )
