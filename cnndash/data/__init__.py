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

One module per job, all re-exported here (``from cnndash.data import X`` works for every name below):

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

from cnndash.data import folds, pins, versions  # noqa: F401  K-fold, pins, dataset versions (data-centric)
from cnndash.data.archive import extract_image_zip
from cnndash.data.builtin import (
    BUILTIN_DATASETS,
    MAX_SHAPES_BYTES,
    SHAPE_CLASSES,
    SHAPES_DEFAULTS,
    generate_shapes,
    sample_photos,
    torchvision_root,
)
from cnndash.data.folders import find_dataset_root, load_image_folder, scan_image_folder
from cnndash.data.images import IMAGE_EXTENSIONS, DatasetError, ImageList, ImageSet, is_image_file
from cnndash.data.limits import (
    ARCHIVE_RATIO_FLOOR,
    DATA_QUOTA_ENV,
    DATA_QUOTA_MB,
    MAX_ARCHIVE_RATIO,
    MAX_ENTRY_DEPTH,
    MAX_IMAGE_PIXELS,
    MAX_NAME_BYTES,
    MAX_PATH_CHARS,
    MAX_ZIP_ENTRY_BYTES,
    MAX_ZIP_FILES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    MIN_FREE_ENV,
    MIN_FREE_MB,
    RATIO_FLOOR,
    data_quota_bytes,
    min_free_bytes,
)
from cnndash.data.pins import (
    DatasetRef,
    dataset_revision,
    load_ref,
    load_run_dataset,
    pin_dataset,
    release,
    run_data_key,
    run_holder,
    run_split,
    run_val_paths,
)
from cnndash.data.registry import load_dataset
from cnndash.data.report import (
    FEW_IMAGES,
    IMBALANCE_RATIO,
    IMPORT_RECORD,
    SkippedFile,
    ValidationReport,
    validate_image_folder,
)
from cnndash.data.splits import stratified_split
from cnndash.data.stats import compute_mean_std
from cnndash.data.store import (
    check_dataset_name,
    dataset_name_from,
    dataset_report,
    datasets_dir,
    delete_dataset,
    import_dataset,
    import_dataset_zip,
    list_datasets,
    quota_used,
    replace_dataset_zip,
)

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
