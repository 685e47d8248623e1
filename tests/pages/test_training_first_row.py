"""The Training form's first row (``ui.training.form_start``): drawn before PyTorch from the store's names,
and drawn by the engine part instead when only the store's adoption can list the datasets."""

from __future__ import annotations

import zipfile

from cnndash.data.names import names_now
from cnndash.paths import data_dir
from tests.engine.data.test_storage import noise_zip
from tests.pages.test_pages import run_page

PAGE = "pages/training.py"


def test_a_folder_dropped_in_datasets_is_listed_once_the_store_has_adopted_it(tmp_path):
    with zipfile.ZipFile(noise_zip(tmp_path / "birds.zip", {"owl": 2, "tit": 2})) as archive:
        archive.extractall(data_dir() / "datasets" / "birds")
    assert names_now() is None  # the first row cannot list without the store: the engine part draws it
    at = run_page(PAGE)
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="train-dataset")
    assert "birds" in box.options[-1] and box.value == "digits"
    assert at.selectbox(key="train-pipeline").value == "(none)"
    assert names_now() == ["birds"]  # adopted: the next first row lists it without PyTorch
