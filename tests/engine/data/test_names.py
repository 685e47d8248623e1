"""The stored datasets' names read without PyTorch (:func:`cnndash.data.names.names_now`, the Training page's
first row) are those :func:`cnndash.data.list_datasets` gives, or None when only its adoption can tell."""

from __future__ import annotations

import zipfile

from cnndash.data import import_dataset_zip, list_datasets, startup
from cnndash.data.names import names_now
from tests.engine.data.test_storage import noise_zip


def test_names_now_are_list_datasets_names_or_none_while_a_folder_awaits_adoption(tmp_path):
    data = tmp_path / "data"
    assert names_now(data) == [] == list_datasets(data)
    import_dataset_zip(noise_zip(tmp_path / "pets.zip", {"cat": 2, "dog": 2}), name="pets", data_dir=data)
    assert names_now(data) == ["pets"] == list_datasets(data)

    with zipfile.ZipFile(noise_zip(tmp_path / "birds.zip", {"owl": 2, "tit": 2})) as archive:
        archive.extractall(data / "datasets" / "birds")  # dropped by hand: adopted at the store's next start
    assert names_now(data) is None
    startup.forget_ready()  # a new process's first listing
    assert list_datasets(data) == ["birds", "pets"] == names_now(data)

    (data / "datasets" / "notes").mkdir()  # not a dataset: never listed, so the listing needs the store
    assert names_now(data) is None
    assert list_datasets(data) == ["birds", "pets"]
