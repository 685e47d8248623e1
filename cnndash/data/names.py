"""The dataset store's names, read without PyTorch: the built-ins, the database's schema and connection, and
the stored datasets' names as :func:`cnndash.data.list_datasets` gives them.

Importing the rest of the store imports PyTorch and torchvision through the image decoding (seconds on a
cold, loaded server); the Training page's first paint lists the datasets from here alone
(:func:`names_now`), and :mod:`cnndash.data.catalog` builds on this module.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cnndash import paths
from cnndash.store import db as store_db
from cnndash.text import N_

BUILTIN_DATASETS: dict[str, str] = {
    "digits": N_("scikit-learn's handwritten digits: 1797 grayscale 8×8 images, 10 classes (offline)"),
    "shapes": N_("generated circles, squares and triangles with object masks, 64×64 RGB (offline)"),
    "mnist": N_("MNIST handwritten digits, 28×28 grayscale, 10 classes (files under the data folder)"),
    "fashion_mnist": N_("Fashion-MNIST clothing, 28×28 grayscale, 10 classes (files under the data folder)"),
    "cifar10": N_("CIFAR-10 photos, 32×32 RGB, 10 classes (files under the data folder)"),
}

DOMAIN = "datasets"
DATASETS_DIR = "datasets"  # the old layout's folder, and where a person may drop a folder to import it

SCHEMA_V1 = """
CREATE TABLE contents (
    id TEXT PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('upload', 'builtin', 'zip')),
    key TEXT,
    source TEXT NOT NULL DEFAULT '',
    bytes INTEGER NOT NULL CHECK (bytes >= 0),
    files INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE UNIQUE INDEX contents_by_key ON contents(kind, key) WHERE key IS NOT NULL;
CREATE TABLE versions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent TEXT NOT NULL,
    base TEXT NOT NULL,
    base_content TEXT REFERENCES contents(id),
    base_path TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    inherited TEXT NOT NULL DEFAULT '[]',
    created REAL NOT NULL,
    CHECK ((base_content IS NULL) <> (base_path IS NULL))
);
CREATE TABLE datasets (
    name TEXT PRIMARY KEY,
    content TEXT REFERENCES contents(id),
    version INTEGER UNIQUE REFERENCES versions(id),
    created REAL NOT NULL,
    CHECK ((content IS NULL) <> (version IS NULL))
);
CREATE INDEX datasets_by_content ON datasets(content);
CREATE TABLE version_images (
    version INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    origin TEXT NOT NULL,
    prefix TEXT NOT NULL,
    class TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (version, origin)
) WITHOUT ROWID;
CREATE UNIQUE INDEX version_images_by_path ON version_images(version, path);
CREATE INDEX version_images_by_class ON version_images(version, class);
CREATE TABLE steps (
    version INTEGER NOT NULL REFERENCES versions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    edits TEXT NOT NULL,
    PRIMARY KEY (version, seq)
);
CREATE TABLE step_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    origin TEXT NOT NULL,
    prefix TEXT NOT NULL,
    old_class TEXT NOT NULL,
    old_path TEXT NOT NULL,
    new_class TEXT,
    new_path TEXT,
    FOREIGN KEY (version, seq) REFERENCES steps(version, seq) ON DELETE CASCADE
);
CREATE INDEX step_changes_by_step ON step_changes(version, seq);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    version INTEGER NOT NULL,
    revision INTEGER NOT NULL,
    name TEXT NOT NULL,
    base TEXT NOT NULL,
    base_content TEXT REFERENCES contents(id),
    base_path TEXT,
    steps INTEGER NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX snapshots_by_state ON snapshots(version, revision);
CREATE TABLE snapshot_images (
    snapshot INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    origin TEXT NOT NULL,
    prefix TEXT NOT NULL,
    class TEXT NOT NULL,
    path TEXT NOT NULL,
    PRIMARY KEY (snapshot, origin)
) WITHOUT ROWID;
CREATE TABLE pins (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    holder TEXT NOT NULL,
    content TEXT REFERENCES contents(id),
    snapshot INTEGER REFERENCES snapshots(id),
    created REAL NOT NULL
);
CREATE INDEX pins_by_holder ON pins(holder);
CREATE TABLE reservations (
    token TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    bytes INTEGER NOT NULL CHECK (bytes >= 0),
    created REAL NOT NULL
);
CREATE TABLE trash (folder TEXT PRIMARY KEY, since REAL NOT NULL);
"""
MIGRATIONS = [SCHEMA_V1]


def is_visible(path: Path) -> bool:
    """False for hidden files/folders and macOS metadata (``.x``, ``._x``, ``__MACOSX``)."""
    return not (path.name.startswith(".") or path.name == "__MACOSX")


def data_root(data_dir: Path | None = None) -> Path:
    """The data folder (``data_dir`` or ``paths.data_dir()``)."""
    return Path(data_dir) if data_dir is not None else paths.data_dir()


def db(data_dir: Path | None = None) -> sqlite3.Connection:
    """This thread's connection to the data folder's database, with the datasets schema applied."""
    return store_db.connect(DOMAIN, MIGRATIONS, data_dir=data_root(data_dir))


def dataset_names(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM datasets ORDER BY name")]


def adoption_candidates(data_dir: Path | None = None) -> list[Path]:
    """The visible folders of ``datasets/`` the database does not know yet, sorted: what the start-up
    adoption (:func:`cnndash.data.startup.adopt`) tries to make datasets of."""
    folder = data_root(data_dir) / DATASETS_DIR
    if not folder.is_dir():
        return []
    conn = db(data_dir)
    known = {row[0] for row in conn.execute("SELECT folder FROM contents UNION SELECT folder FROM trash")}
    return [
        d for d in sorted(folder.iterdir())
        if d.is_dir() and is_visible(d) and f"{DATASETS_DIR}/{d.name}" not in known
    ]  # fmt: skip


def names_now(data_dir: Path | None = None) -> list[str] | None:
    """What :func:`cnndash.data.list_datasets` answers, read without its start-up sweep and adoption (and so
    without PyTorch); None when the adoption could add a name (a folder of ``datasets/`` not seen yet): then
    ask ``list_datasets``. The sweep only removes what no name points at, so it changes no name."""
    if adoption_candidates(data_dir):
        return None
    return dataset_names(db(data_dir))
