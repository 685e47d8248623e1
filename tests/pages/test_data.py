"""AppTest: the Data & augmentation page with the real engine (datasets on disk, real torchvision)."""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from cnndash import augment, data
from cnndash.models import default_image_size
from cnndash.training.auto import auto_config
from cnndash.training.loops import TrainConfig
from tests.pages.test_pages import run_page

PAGE = "pages/data_augmentation.py"


def make_zip(path: Path, counts: dict[str, int]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for k, (cls, n) in enumerate(counts.items()):
            for i in range(n):
                buffer = io.BytesIO()
                Image.new("RGB", (12, 12), (k * 80, i * 10, 50)).save(buffer, format="PNG")
                zf.writestr(f"{cls}/{i}.png", buffer.getvalue())
    return path


def errors(at) -> list[str]:
    assert not at.exception, [e.value for e in at.exception]
    return [e.value for e in at.error]


@pytest.fixture
def page():
    at = run_page(PAGE, timeout=120)
    assert errors(at) == []
    return at


@pytest.fixture
def aug(page):
    """The page switched to its Augmentation section."""
    page.radio(key="data-section").set_value("Augmentation").run()
    assert errors(page) == []
    return page


def test_default_dataset_shows_counts_and_gallery(page):
    metrics = {m.label: m.value for m in page.metric}
    assert metrics["Classes"] == "3" and metrics["Train images"] == "2400" and metrics["Val images"] == "600"
    table = page.table[0].value
    assert list(table["class"]) == data.SHAPE_CLASSES and list(table["total"]) == [1000, 1000, 1000]
    page.slider(key="data-val-fraction").set_value(0.5).run()
    assert {m.label: m.value for m in page.metric}["Val images"] == "1500"


def test_builtin_digits_and_missing_torchvision_files(page):
    page.selectbox(key="data-dataset").set_value("digits").run()
    assert errors(page) == []
    assert {m.label: m.value for m in page.metric}["Size · channels"] == "8×8 · 1"
    page.selectbox(key="data-dataset").set_value("cifar10").run()
    (message,) = errors(page)
    assert "cifar-10-batches-py" in message and "does not download" in message


def test_uploaded_dataset_report_and_delete(tmp_path):
    zip_path = make_zip(tmp_path / "pets.zip", {"cat": 3, "dog": 12})
    data.import_dataset_zip(zip_path, "pets")
    at = run_page(PAGE, timeout=120)
    at.selectbox(key="data-dataset").set_value("pets").run()
    assert errors(at) == []
    warnings = " ".join(w.value for w in at.warning)
    assert "imbalance" in warnings and "few images" in warnings
    assert list(at.table[0].value["total"]) == [3, 12]
    assert at.button(key="data-delete").disabled
    at.checkbox(key="data-delete-confirm").check().run()
    at.button(key="data-delete").click().run()
    assert errors(at) == []
    assert data.list_datasets() == []
    assert at.selectbox(key="data-dataset").value == "shapes"
    assert any("Deleted dataset 'pets'" in s.value for s in at.success)


def test_add_step_invalid_parameter_and_code(aug):
    aug.selectbox(key="aug-add-op").set_value("RandomRotation")
    aug.button(key="aug-add").click().run()
    assert errors(aug) == []
    code = aug.code[0].value
    assert "v2.RandomRotation(degrees=(-30.0, 30.0))" in code and "v2.RandomHorizontalFlip(p=0.5)" in code
    aug.number_input(key="aug-1-degrees-min").set_value(45.0).run()
    messages = errors(aug)
    assert messages and all("Step 2 (RandomRotation), argument 'degrees'" in m for m in messages)
    aug.number_input(key="aug-1-degrees-min").set_value(-10.0).run()
    assert errors(aug) == []
    assert "degrees=(-10.0, 30.0)" in aug.code[0].value


def test_reorder_and_remove_steps(aug):
    aug.selectbox(key="aug-add-op").set_value("ColorJitter")
    aug.button(key="aug-add").click().run()
    aug.button(key="aug-1-up").click().run()
    code = aug.code[0].value
    assert code.index("ColorJitter") < code.index("RandomHorizontalFlip")
    aug.button(key="aug-0-remove").click().run()
    code = aug.code[0].value
    assert "RandomHorizontalFlip" not in code and "ColorJitter" in code


def test_normalize_uses_dataset_statistics_and_adds_todtype(aug):
    aug.selectbox(key="aug-add-op").set_value("Normalize")
    aug.button(key="aug-add").click().run()
    assert errors(aug) == []
    spec = json.loads(aug.text_area(key="aug-json").value)
    assert [s["op"] for s in spec] == ["RandomHorizontalFlip", "ToDtype", "Normalize"]
    shapes = data.load_dataset("shapes")
    size = default_image_size(TrainConfig.model, shapes.image_size)  # what training picks by default
    mean, std = data.compute_mean_std(shapes.train, size=size)
    assert spec[2]["mean"] == pytest.approx(mean) and spec[2]["std"] == pytest.approx(std)


@pytest.mark.parametrize("op", ["RandomResizedCrop", "Resize"])
def test_a_new_crop_or_resize_starts_at_the_size_suggested_for_the_data(aug, op):
    aug.selectbox(key="aug-add-op").set_value(op)
    aug.button(key="aug-add").click().run()
    assert errors(aug) == []
    spec = json.loads(aug.text_area(key="aug-json").value)
    side = auto_config(TrainConfig(dataset="shapes")).config.image_size  # the one-click choice's size
    assert spec[-1]["op"] == op and spec[-1]["size"] == [side, side] and side != 224


def test_resample_changes_the_seed(aug):
    assert aug.number_input(key="aug-seed").value == 0
    aug.button(key="aug-resample").click().run()
    assert aug.number_input(key="aug-seed").value == 1
    assert errors(aug) == []


def test_save_and_load_pipeline(aug):
    aug.selectbox(key="aug-add-op").set_value("GaussianBlur")
    aug.button(key="aug-add").click().run()
    aug.text_input(key="aug-save-name").input("blurry")
    aug.button(key="aug-save").click().run()
    assert errors(aug) == []
    assert augment.list_pipelines() == ["blurry"]
    assert [s["op"] for s in augment.load_pipeline("blurry")] == ["RandomHorizontalFlip", "GaussianBlur"]
    aug.button(key="aug-0-remove").click().run()
    aug.button(key="aug-load").click().run()
    assert "v2.GaussianBlur" in aug.code[0].value and "RandomHorizontalFlip" in aug.code[0].value


def test_bad_pipeline_name_and_bad_json_are_messages(aug):
    aug.text_input(key="aug-save-name").input("../evil")
    aug.button(key="aug-save").click().run()
    assert any("not allowed" in m for m in errors(aug))
    aug.text_area(key="aug-json").input('[{"op": "RandomCrop"}]')
    aug.button(key="aug-json-apply").click().run()
    assert any("'size'" in m and "required" in m for m in errors(aug))
    assert not Path(os.environ["CNNDASH_DATA_DIR"], "pipelines").exists()


def test_choices_survive_switching_sections(page):
    page.selectbox(key="data-dataset").set_value("digits").run()
    page.radio(key="data-section").set_value("Augmentation").run()
    page.number_input(key="aug-seed").set_value(5).run()
    page.radio(key="aug-source").set_value("Dataset image").run()
    page.selectbox(key="aug-dataset").set_value("digits").run()
    page.number_input(key="aug-index").set_value(3).run()
    assert errors(page) == []
    page.radio(key="data-section").set_value("Datasets").run()
    assert page.selectbox(key="data-dataset").value == "digits"
    page.radio(key="data-section").set_value("Augmentation").run()
    assert page.number_input(key="aug-seed").value == 5
    assert page.number_input(key="aug-index").value == 3
    assert json.loads(page.text_area(key="aug-json").value) == [{"op": "RandomHorizontalFlip", "p": 0.5}]


def test_gallery_of_many_classes_shows_the_picked_ones():
    root = data.datasets_dir()
    for k in range(14):
        (root / "many" / f"c{k:02d}").mkdir(parents=True)
        for i in range(2):
            Image.new("L", (6, 6), k * 15 + i).save(root / "many" / f"c{k:02d}" / f"{i}.png")
    at = run_page(PAGE, timeout=120)
    at.selectbox(key="data-dataset").set_value("many").run()
    assert errors(at) == []
    picker = at.multiselect(key="data-gallery-classes")
    assert picker.value == [f"c{k:02d}" for k in range(12)]
    images_before = len(at.get("image"))
    picker.set_value(["c13"]).run()
    assert errors(at) == []
    assert len(at.get("image")) == images_before - 11


def test_normalize_statistics_follow_the_previewed_dataset(aug):
    aug.radio(key="aug-source").set_value("Dataset image").run()
    aug.selectbox(key="aug-dataset").set_value("digits").run()
    aug.selectbox(key="aug-add-op").set_value("Normalize")
    aug.button(key="aug-add").click().run()
    assert errors(aug) == []  # one mean for the 1-channel digits
    spec = json.loads(aug.text_area(key="aug-json").value)
    digits = data.load_dataset("digits")
    size = default_image_size(TrainConfig.model, digits.image_size)  # 8x8 digits train at 28x28
    mean, std = data.compute_mean_std(digits.train, size=size)
    assert (
        len(mean) == 1 and spec[-1]["mean"] == pytest.approx(mean) and spec[-1]["std"] == pytest.approx(std)
    )


def upload(at, name: str, payload: bytes):
    at.get("file_uploader")[0].set_value((name, payload, "application/zip")).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def zip_bytes(tmp_path: Path, counts: dict[str, int]) -> bytes:
    return make_zip(tmp_path / "upload.zip", counts).read_bytes()


MARKUP_CLASS = "**bold** <b>x :red[y] $z$"  # a folder name: no '/'


def test_upload_names_are_text_and_a_taken_name_asks(tmp_path):
    at = run_page(PAGE, timeout=120)
    payload = zip_bytes(tmp_path, {MARKUP_CLASS: 6, "plain": 6})
    upload(at, "my-set.zip", payload)
    assert errors(at) == []
    assert any("Stored as 'my-set'" in s.value for s in at.success)
    assert at.selectbox(key="data-dataset").value == "my-set"
    captions = [img.caption for image in at.get("image") for img in image.proto.imgs]
    escaped = r"\*\*bold\*\* \<b\>x \:red\[y\] \$z\$"  # literal text, not Markdown
    assert any(c.startswith(escaped) for c in captions), captions
    assert not any("**bold**" in c for c in captions)

    # The same name again: nothing happens until the user chooses.
    again = zip_bytes(tmp_path, {"a": 6, "b": 6, "c": 6})
    upload(at, "my-set.zip", again)
    assert any("already exists" in w.value for w in at.warning)
    assert data.list_datasets() == ["my-set"]
    at.button(key="data-upload-keep").click().run()
    assert data.list_datasets() == ["my-set", "my-set-2"]
    assert any("Stored as 'my-set-2' (next to the existing one)" in s.value for s in at.success)

    upload(at, "my-set.zip", zip_bytes(tmp_path, {"x": 6, "y": 6}))
    at.button(key="data-upload-replace").click().run()
    assert errors(at) == []
    assert data.list_datasets() == ["my-set", "my-set-2"]
    assert data.dataset_report("my-set").classes == ["x", "y"]

    upload(at, "my-set.zip", zip_bytes(tmp_path, {"p": 6, "q": 6}))
    at.button(key="data-upload-cancel").click().run()
    assert data.dataset_report("my-set").classes == ["x", "y"]
    assert any("cancelled" in s.value for s in at.success)

    # Deleting the dataset the message names removes the message.
    upload(at, "other.zip", payload)
    assert any("Stored as 'other'" in s.value for s in at.success)
    at.checkbox(key="data-delete-confirm").check().run()
    at.button(key="data-delete").click().run()
    assert not any("Stored as 'other'" in s.value for s in at.success)


@pytest.mark.parametrize("payload", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 40])
def test_a_broken_upload_is_a_message(payload):
    at = run_page(PAGE, timeout=120)
    upload(at, "broken.zip", payload)
    assert errors(at), "a broken zip must be reported"
    assert data.list_datasets() == []


def test_a_messy_phone_export_reports_the_real_problem_first(tmp_path):
    """Issue 23, point 4: 281 .DS_Store/__MACOSX files and one truncated photo are not "282 files skipped"."""
    from tests.fixtures import MESSY_TRUNCATED, messy_phone_zip

    at = run_page(PAGE, timeout=120)
    upload(at, "Phone export.zip", messy_phone_zip(tmp_path / "phone.zip", junk=281).read_bytes())
    assert errors(at) == []
    # The upload's message, then the report: its problem first, before the dataset's other warnings.
    message, problem, *others = [w.value for w in at.warning]
    assert message.startswith(r"Stored as 'Phone-export': 18 images. 1 unreadable image\: ")
    assert "281 system files ignored" in message and message.index("unreadable") < message.index("system")
    assert problem == rf"1 unreadable image\: {MESSY_TRUNCATED} (truncated)"
    assert any("Mixed image modes" in w for w in others)  # the CMYK and transparent photos are kept
    assert any(c.value.startswith("281 system files ignored") for c in at.caption)
    assert not at.success  # a problem is never shown as plain success
    table = next(df.value for df in at.dataframe if "why" in getattr(df.value, "columns", []))
    assert len(table) == 282 and table["file"].iloc[0] == MESSY_TRUNCATED  # the full list, problem first
    assert at.expander[0].label == "Files skipped during upload (282)"


def test_an_upload_error_names_the_users_file():
    at = run_page(PAGE, timeout=120)
    upload(at, "Holiday photos (2).zip", b"not a zip at all")
    (message,) = errors(at)
    assert "Holiday photos (2).zip" in message and "upload.zip" not in message


def test_the_upload_message_follows_a_language_switch(tmp_path):
    """Issue 25: the message an upload leaves stays on the page across runs; a switch to 简体中文 says it again
    in Chinese (it is kept as what says it, not as the English it was first shown in)."""
    at = run_page(PAGE, timeout=120)
    upload(at, "pets.zip", zip_bytes(tmp_path, {"cat": 6, "dog": 6}))
    assert [s.value for s in at.success] == ["Stored as 'pets': 12 images."]
    at.radio(key="app-language").set_value("zh-CN").run()
    assert errors(at) == []
    assert [s.value for s in at.success] == ["已保存为 'pets'：12 张图像。"]
