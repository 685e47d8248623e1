"""The dataset store's start in a data folder, once per process: sweep what killed processes left, and adopt
what an older cnndash (or a person) put in ``data_dir()/datasets``.

:func:`ready` is called by every public function of the store before it reads a name (the CLI and the
app's first use therefore sweep); :func:`sweep` may be called again at any time, by any process, while
others work: it only removes what belongs to no live process.

**Sweep.** Staging folders and reservations of dead owners (an ``flock`` the kernel released, see
:mod:`cnndash.data.catalog`); ``contents/`` folders the database does not know (a publisher killed between
its rename and its commit); the trash; pins of run folders that no longer exist and of dead owners;
snapshots and uploads nothing refers to; and the leftovers of the old layout (``.staging-*``, ``.trash-*``,
``.extract-*`` in ``datasets/``, ``.import-*.zip``, the old zip cache, built-in files and K-fold folders).

**Adoption.** Every visible folder of ``datasets/`` not yet known becomes a stored dataset of that name
(it stays where it is and is counted once in the quota); a folder with ``.cnndash-version.json`` (the old
versions: hard links to the base) becomes a version whose manifest is its base's with the recorded steps
applied once, and its folder of links is removed. A version whose base is gone is adopted as a plain
dataset: its links are then the only copy of its files. A folder that is not a dataset is left alone
(never listed), unless it is empty — what a killed import of the old code left.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sqlite3
import threading
from pathlib import Path

from cnndash.data import catalog, manifests
from cnndash.data.catalog import CONTENTS_DIR, OWNERS_DIR, STAGING_PREFIX, TRASH_PREFIX, UPLOAD, transaction
from cnndash.data.contents import Base, Content, empty_trash, measure, resolve_base
from cnndash.data.folders import find_dataset_root, scan_image_folder
from cnndash.data.images import DatasetError, is_visible
from cnndash.data.names import DATASETS_DIR, adoption_candidates

VERSION_RECORD = ".cnndash-version.json"  # an old version folder's record
LEGACY_PREFIXES = (".staging-", ".trash-", ".extract-")  # what the old code's killed imports left
IMPORT_PREFIX = ".import-"  # data_dir()/.import-<owner>-….zip: a folder being imported, packed as a zip

_ready: set[tuple[str, int]] = set()
_lock = threading.RLock()  # re-entrant: adoption itself reads names through the public functions


def ready(data_dir: Path | None = None) -> None:
    """Sweep and adopt once per process and data folder (other threads wait for the first one)."""
    root = catalog.data_root(data_dir)
    key = (str(root.resolve()), os.getpid())
    if key in _ready:
        return
    with _lock:
        if key in _ready:
            return
        _ready.add(key)
        try:
            sweep(root)
            adopt(root)
            _sweep_legacy(root)
        except BaseException:
            _ready.discard(key)
            raise


def forget_ready() -> None:
    """Make the next :func:`ready` sweep and adopt again (tests that reuse a data folder)."""
    with _lock:
        _ready.clear()


class _Owners:
    """Owner liveness, asked once per token during one sweep."""

    def __init__(self, root: Path) -> None:
        self.root, self.known = root, {}

    def dead(self, token: str) -> bool:
        if token not in self.known:
            self.known[token] = catalog.owner_alive(token, self.root)
        return not self.known[token]


def sweep(data_dir: Path | None = None) -> None:
    """Remove what belongs to no live process and what nothing refers to (see the module docstring)."""
    root = catalog.data_root(data_dir)
    conn = catalog.db(root)
    owners = _Owners(root)
    folder = catalog.contents_dir(root)
    remove: list[Path] = []
    with transaction(conn):
        for token, owner in conn.execute("SELECT token, owner FROM reservations").fetchall():
            if owners.dead(owner):
                catalog.drop_reservation(conn, token)
        for pin_id, holder in conn.execute("SELECT id, holder FROM pins").fetchall():
            if _holder_gone(holder, owners):
                conn.execute("DELETE FROM pins WHERE id = ?", (pin_id,))
        registered = {row[0] for row in conn.execute("SELECT folder FROM contents")}
        for entry in sorted(folder.iterdir()) if folder.is_dir() else []:
            name = entry.name
            if name == OWNERS_DIR:
                continue
            if name.startswith(STAGING_PREFIX):
                if owners.dead(name[len(STAGING_PREFIX) :].split("-", 1)[0]):
                    remove.append(entry)
            elif name.startswith(TRASH_PREFIX) or f"{CONTENTS_DIR}/{name}" not in registered:
                remove.append(entry)
        catalog.collect(conn)
    for entry in remove:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
    empty_trash(root)
    for leftover in root.glob(f"{IMPORT_PREFIX}*"):
        if owners.dead(leftover.name[len(IMPORT_PREFIX) :].split("-", 1)[0]):
            leftover.unlink(missing_ok=True)


def _holder_gone(holder: str, owners: _Owners) -> bool:
    kind, _, rest = holder.partition(":")
    if kind == "run":
        return not Path(rest).is_dir()
    if kind == "owner":
        return owners.dead(rest.split(":", 1)[0])
    return False


def _sweep_legacy(root: Path) -> None:
    """The old layout's leftovers: killed imports' and edits' folders, the old caches and K-fold folders."""
    datasets = root / DATASETS_DIR
    for entry in datasets.iterdir() if datasets.is_dir() else []:
        if entry.name.startswith(LEGACY_PREFIXES) and entry.is_dir():
            shutil.rmtree(entry, ignore_errors=True)
    for old in (root / "cache" / "zips", root / "builtin-files", *root.glob("label-issues/*/folds")):
        shutil.rmtree(old, ignore_errors=True)


# --------------------------------------------------------------------------------------------------
# Adoption


def adopt(data_dir: Path | None = None) -> list[str]:
    """Adopt the folders of ``datasets/`` the database does not know yet; returns the names given."""
    root = catalog.data_root(data_dir)
    candidates = adoption_candidates(root)
    adopted = []
    # Uploads first: the old versions' bases are among them.
    for entry in [d for d in candidates if not (d / VERSION_RECORD).is_file()]:
        adopted += _adopt_upload(root, entry)
    for entry in [d for d in candidates if (d / VERSION_RECORD).is_file()]:
        adopted += _adopt_version(root, entry) or _adopt_upload(root, entry)
    if adopted:
        empty_trash(root)
    return adopted


def _adopt_upload(root: Path, entry: Path) -> list[str]:
    rel = f"{DATASETS_DIR}/{entry.name}"
    try:
        catalog.check_dataset_name(entry.name)
        scan_image_folder(find_dataset_root(entry))
    except DatasetError:
        if not any(is_visible(p) for p in entry.iterdir()):  # an old import killed before its first file
            shutil.rmtree(entry, ignore_errors=True)
        return []
    size, files = measure(entry)
    conn = catalog.db(root)
    with transaction(conn):
        if conn.execute(
            "SELECT 1 FROM contents WHERE folder = ? UNION SELECT 1 FROM trash WHERE folder = ?", (rel, rel)
        ).fetchone():
            return []  # another process adopted it meanwhile (as an upload, or as a version: links to remove)
        content_id = secrets.token_hex(8)
        catalog.add_content(conn, Content(content_id, rel, UPLOAD, None, "adopted", size, files))
        name = catalog.free_name(conn, entry.name, "suffix")
        catalog.point_name(conn, name, content=content_id)
    return [name]


def _adopt_version(root: Path, entry: Path) -> list[str]:
    """An old version folder as a version (its links removed); [] when it cannot be one."""
    rel = f"{DATASETS_DIR}/{entry.name}"
    try:
        catalog.check_dataset_name(entry.name)
        record = json.loads((entry / VERSION_RECORD).read_text())
        steps = [list(step) for step in record["steps"]]
        inherited = int(record.get("inherited", 0))
        base = resolve_base(str(record["base"]), root)
        if base is None:
            return []
        rows = manifests.base_rows(base.root(root))
    except (OSError, ValueError, KeyError, TypeError):  # DatasetError included: adopt it as files
        return []
    conn = catalog.db(root)
    try:
        with transaction(conn):
            if conn.execute("SELECT 1 FROM trash WHERE folder = ?", (rel,)).fetchone():
                return []
            version = create_version_rows(conn, str(record["parent"]), base, rows)
            for step in steps:
                manifests.add_step(conn, version, step)
            # Steps that came from the parent version are part of the manifest but not undoable here.
            conn.execute("DELETE FROM steps WHERE version = ? AND seq <= ?", (version, inherited))
            conn.execute(
                "UPDATE versions SET inherited = ? WHERE id = ?", (json.dumps(steps[:inherited]), version)
            )
            manifests.check_version(conn, version)
            name = catalog.free_name(conn, entry.name, "suffix")
            catalog.point_name(conn, name, version=version)
            conn.execute(
                "INSERT OR IGNORE INTO trash (folder, since) VALUES (?, strftime('%s','now'))", (rel,)
            )
    except DatasetError:
        return []
    return [name]


def create_version_rows(conn: sqlite3.Connection, parent: str, base: Base, rows: list[manifests.Row]) -> int:
    """Inside a transaction: a new version of ``base`` holding ``rows``; returns its id."""
    content = base.content.id if base.content is not None else None
    if content is not None and catalog.get_content(conn, content) is None:
        raise DatasetError(
            "Dataset {base_name} changed while the version was being made; try again.",
            base_name=repr(base.name),
        )
    cursor = conn.execute(
        "INSERT INTO versions (parent, base, base_content, base_path, created) "
        "VALUES (?, ?, ?, ?, strftime('%s','now'))",
        (parent, base.name, content, None if content is not None else str(base.path)),
    )
    version = int(cursor.lastrowid)
    manifests.insert_rows(conn, version, rows)
    return version
