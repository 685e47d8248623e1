"""Datasets: the built-ins, image-folder directories and uploaded zips, and their train/val split.

Everything a page, the trainer or the CLI needs to turn a dataset name into labelled images goes through
:func:`load_dataset`, which returns an :class:`ImageSet` (class names, channel count, and a train and a
val :class:`ImageList`). Built-ins work offline:

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, 10 classes), scaled to 0–255.
- ``shapes``: generated images of circles, squares and triangles on a noisy background, each with an
  object mask (Grad-CAM compares its maps to them). Options go in the name:
  ``"shapes:count=300,size=32,seed=1"`` (defaults: 3000 images, 64×64 RGB, seed 0).
- ``mnist``, ``fashion_mnist``, ``cifar10``: torchvision's datasets, read from files placed under
  ``data_dir()/torchvision`` (nothing is downloaded); their official test split is the val split.

Any other name is a stored dataset or version (names in ``data_dir()/cnndash.sqlite3``, files under
``data_dir()/contents``; docs/storage.md), or a path to an image-folder directory (``class_name/*.png`` or
``train/class_name/…`` + ``val/class_name/…``) or zip.

One module per job, all re-exported here (``from cnndash.data import X`` works for every name below; each
is imported on first use, so importing one module of the package imports no other):

- :mod:`.names`: the built-ins' names, the store's schema and its names, read without PyTorch;
- :mod:`.images`: ``ImageList`` / ``ImageSet``, ``DatasetError``, opening image files;
- :mod:`.splits`: the stratified, seeded train/val split;
- :mod:`.builtin`: ``digits``, ``shapes``, the sample photos, torchvision's files;
- :mod:`.folders`: scanning and loading image-folder datasets;
- :mod:`.report`: the validation report shown after an upload;
- :mod:`.limits`: what one upload may cost (archive sizes, the data folder's quota, free disk space);
- :mod:`.entries`: the names inside an uploaded zip, checked before anything is written;
- :mod:`.archive`: safe extraction of uploaded zips (each image checked as it is written);
- :mod:`.catalog`: the store's metadata in SQLite (names, contents, versions, pins, the quota ledger);
- :mod:`.contents`: the store's bytes (content folders staged, published by one rename, freed);
- :mod:`.manifests`: a version's manifest in tables, edits and undo;
- :mod:`.startup`: once per process, sweep what killed processes left and adopt the old layout;
- :mod:`.store`: the stored datasets (names, import, replace, list, delete);
- :mod:`.registry`: :func:`load_dataset`, from any name or path to an ``ImageSet``;
- :mod:`.folds`, :mod:`.versions`: every image as a labelled file, K-fold splits; dataset versions;
- :mod:`.pins`: what a run trained on, fixed — pins, :func:`load_run_dataset`, :func:`dataset_revision`;
- :mod:`.stats`: a split's mean/std, the same numbers training uses.
"""

from __future__ import annotations

from cnndash.lazy import lazy_attributes

# Every name below is imported from its module on first use (PEP 562), for import time only: importing
# one torch-free module of this package (the Training page's first paint imports
# ``cnndash.data.names``) must not import every other, which pulls in PyTorch and torchvision.
# Not to break an import cycle: tests/test_house.py counts these as imports of their modules.
LAZY_EXPORTS = {
    "extract_image_zip": "cnndash.data.archive",
    "BUILTIN_DATASETS": "cnndash.data.names",
    "MAX_SHAPES_BYTES": "cnndash.data.builtin",
    "SHAPE_CLASSES": "cnndash.data.builtin",
    "SHAPES_DEFAULTS": "cnndash.data.builtin",
    "generate_shapes": "cnndash.data.builtin",
    "sample_photos": "cnndash.data.builtin",
    "torchvision_root": "cnndash.data.builtin",
    "find_dataset_root": "cnndash.data.folders",
    "load_image_folder": "cnndash.data.folders",
    "scan_image_folder": "cnndash.data.folders",
    "IMAGE_EXTENSIONS": "cnndash.data.images",
    "DatasetError": "cnndash.data.images",
    "ImageList": "cnndash.data.images",
    "ImageSet": "cnndash.data.images",
    "is_image_file": "cnndash.data.images",
    "ARCHIVE_RATIO_FLOOR": "cnndash.data.limits",
    "DATA_QUOTA_ENV": "cnndash.data.limits",
    "DATA_QUOTA_MB": "cnndash.data.limits",
    "MAX_ARCHIVE_RATIO": "cnndash.data.limits",
    "MAX_ENTRY_DEPTH": "cnndash.data.limits",
    "MAX_IMAGE_PIXELS": "cnndash.data.limits",
    "MAX_NAME_BYTES": "cnndash.data.limits",
    "MAX_PATH_CHARS": "cnndash.data.limits",
    "MAX_ZIP_ENTRY_BYTES": "cnndash.data.limits",
    "MAX_ZIP_FILES": "cnndash.data.limits",
    "MAX_ZIP_RATIO": "cnndash.data.limits",
    "MAX_ZIP_TOTAL_BYTES": "cnndash.data.limits",
    "MIN_FREE_ENV": "cnndash.data.limits",
    "MIN_FREE_MB": "cnndash.data.limits",
    "RATIO_FLOOR": "cnndash.data.limits",
    "data_quota_bytes": "cnndash.data.limits",
    "min_free_bytes": "cnndash.data.limits",
    "DatasetRef": "cnndash.data.pins",
    "dataset_revision": "cnndash.data.pins",
    "load_ref": "cnndash.data.pins",
    "load_run_dataset": "cnndash.data.pins",
    "pin_dataset": "cnndash.data.pins",
    "release": "cnndash.data.pins",
    "run_data_key": "cnndash.data.pins",
    "run_holder": "cnndash.data.pins",
    "run_split": "cnndash.data.pins",
    "run_val_paths": "cnndash.data.pins",
    "load_dataset": "cnndash.data.registry",
    "FEW_IMAGES": "cnndash.data.report",
    "IMBALANCE_RATIO": "cnndash.data.report",
    "IMPORT_RECORD": "cnndash.data.report",
    "SkippedFile": "cnndash.data.report",
    "ValidationReport": "cnndash.data.report",
    "validate_image_folder": "cnndash.data.report",
    "stratified_split": "cnndash.data.splits",
    "compute_mean_std": "cnndash.data.stats",
    "check_dataset_name": "cnndash.data.store",
    "dataset_name_from": "cnndash.data.store",
    "dataset_report": "cnndash.data.store",
    "datasets_dir": "cnndash.data.store",
    "delete_dataset": "cnndash.data.store",
    "import_dataset": "cnndash.data.store",
    "import_dataset_zip": "cnndash.data.store",
    "list_datasets": "cnndash.data.store",
    "quota_used": "cnndash.data.store",
    "replace_dataset_zip": "cnndash.data.store",
}
SUBMODULES = (
    "folds",
    "pins",
    "versions",
)  # K-fold, pins, dataset versions (data-centric): ``cnndash.data.pins``

__all__ = [
    "ARCHIVE_RATIO_FLOOR",
    "BUILTIN_DATASETS",
    "DATA_QUOTA_ENV",
    "DATA_QUOTA_MB",
    "FEW_IMAGES",
    "IMAGE_EXTENSIONS",
    "IMBALANCE_RATIO",
    "IMPORT_RECORD",
    "MAX_ARCHIVE_RATIO",
    "MAX_ENTRY_DEPTH",
    "MAX_IMAGE_PIXELS",
    "MAX_NAME_BYTES",
    "MAX_PATH_CHARS",
    "MAX_SHAPES_BYTES",
    "MAX_ZIP_ENTRY_BYTES",
    "MAX_ZIP_FILES",
    "MAX_ZIP_RATIO",
    "MAX_ZIP_TOTAL_BYTES",
    "MIN_FREE_ENV",
    "MIN_FREE_MB",
    "RATIO_FLOOR",
    "SHAPES_DEFAULTS",
    "SHAPE_CLASSES",
    "DatasetError",
    "DatasetRef",
    "ImageList",
    "ImageSet",
    "SkippedFile",
    "ValidationReport",
    "check_dataset_name",
    "compute_mean_std",
    "data_quota_bytes",
    "dataset_name_from",
    "dataset_report",
    "dataset_revision",
    "datasets_dir",
    "delete_dataset",
    "extract_image_zip",
    "find_dataset_root",
    "generate_shapes",
    "import_dataset",
    "import_dataset_zip",
    "is_image_file",
    "list_datasets",
    "load_dataset",
    "load_image_folder",
    "load_ref",
    "load_run_dataset",
    "min_free_bytes",
    "pin_dataset",
    "quota_used",
    "release",
    "replace_dataset_zip",
    "run_data_key",
    "run_holder",
    "run_split",
    "run_val_paths",
    "sample_photos",
    "scan_image_folder",
    "stratified_split",
    "torchvision_root",
    "validate_image_folder",
]


__getattr__, __dir__ = lazy_attributes(globals(), LAZY_EXPORTS, SUBMODULES)
