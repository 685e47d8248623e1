"""The Training page's one-click suggestion (ui.training.auto_view): the form's model, image size, batch,
epochs and learning rate come from the engine's choice for the dataset (the CLI's ``--model auto``), with the
reasons shown, and what a person changed by hand stays theirs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from cnndash import augment, data
from cnndash.training.auto import auto_config
from cnndash.training.loops import TrainConfig
from tests.pages.test_pages import run_page

PAGE = "pages/training.py"
SUGGESTED_WIDGETS = {
    "train-model": "model",
    "train-image-size": "image_size",
    "train-batch-size": "batch_size",
    "train-epochs": "epochs",
    "train-lr": "lr",
}


def photo_folder(root: Path, side: int = 96, per_class: int = 12) -> Path:
    """Three classes of colour photos of ``side`` px (textured noise around a class colour)."""
    rng = np.random.default_rng(0)
    for c, colour in enumerate(((200, 40, 40), (40, 200, 40), (40, 40, 200))):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = np.clip(rng.normal(colour, 40, (side, side, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.png")
    return root


def form_values(at) -> dict:
    values = {}
    for key, field in SUGGESTED_WIDGETS.items():
        widget = at.selectbox(key=key) if key == "train-model" else at.number_input(key=key)
        values[field] = widget.value
    return values


def engine_choice(dataset: str) -> dict:
    config = auto_config(TrainConfig(dataset=dataset)).config
    return {field: getattr(config, field) for field in SUGGESTED_WIDGETS.values()}


def test_digits_and_a_photo_folder_get_the_engines_suggestion_with_its_reasons(tmp_path):
    data.import_dataset(photo_folder(tmp_path / "photos"), "photos")
    at = run_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    assert form_values(at) == engine_choice("digits")
    summary = next(c.value for c in at.caption if "Suggested for" in c.value)
    assert "digits" in summary and "LeNet" in summary and "28 px" in summary
    reasons = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert any("grayscale" in r for r in reasons) and any("Epochs" in r and "budget" in r for r in reasons)
    at.selectbox(key="train-dataset").set_value("photos").run()
    assert not at.exception, [e.value for e in at.exception]
    photos = engine_choice("photos")
    assert form_values(at) == photos
    assert photos["model"] != "lenet" and photos["image_size"] > 28  # colour photos at (near) their own size
    summary = next(c.value for c in at.caption if "Suggested for" in c.value)
    assert "photos" in summary and f"{photos['image_size']} px" in summary
    assert not at.button(key="train-start").disabled


def test_a_setting_changed_by_hand_stays_when_the_dataset_changes():
    at = run_page(PAGE)
    at.number_input(key="train-epochs").set_value(4).run()
    at.selectbox(key="train-dataset").set_value("shapes").run()
    shapes = engine_choice("shapes")
    assert at.number_input(key="train-epochs").value == 4  # the person's value
    assert at.selectbox(key="train-model").value == shapes["model"]  # the others follow the data
    assert at.number_input(key="train-batch-size").value == shapes["batch_size"]
    summary = next(c.value for c in at.caption if "Suggested for" in c.value)
    assert "set by hand" in summary and "epochs" in summary
    # A value out of range still blocks Train with the reason (issue 23), suggestion or not.
    at.number_input(key="train-lr").set_value(100.0).run()
    assert at.button(key="train-start").disabled
    assert any("earning rate" in e.value for e in at.error)


def test_a_pipeline_that_crops_to_a_fixed_size_decides_the_image_size():
    augment.save_pipeline("crop48", [{"op": "RandomResizedCrop", "size": [48, 48], "scale": [0.6, 1.0]}])
    at = run_page(PAGE)
    at.selectbox(key="train-dataset").set_value("shapes").run()
    assert at.number_input(key="train-image-size").value == engine_choice("shapes")["image_size"]
    at.selectbox(key="train-pipeline").set_value("crop48").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.number_input(key="train-image-size").value == 0  # automatic: the crop is what the model sees
    seen = next(m.value for m in at.markdown if "The model will see" in m.value)
    assert "48×48 px" in seen and "pipeline outputs 48×48" in seen
