"""Dataset versions: relabel, remove, merge or rename — recorded, reversible, never touching the parent.

A version is a name of the dataset store (it lists, loads, trains and deletes like any upload) whose images
are its *base*'s files — the first dataset that is not a version: a built-in (through its
``class_name/<index>.png`` files), an upload, or an image folder or zip given by path — with a manifest
that says where each image is now (:mod:`cnndash.data.manifests`). No file is written or linked: a relabel
changes one row, a merge or rename the rows of the images it moves. Images are named by their *origin*,
their path in the base, which never changes; their path *now* (``class/file.png``, what ``data relabel``
takes) follows their class.

Edits are grouped in *steps* (one click, or "accept all above a threshold", is one step), applied in one
transaction each: edits of one version from several processes at once are all applied, one step each,
in some order; an edit that cannot apply to the version as it is by then (its image was removed
meanwhile) fails whole, saying so. :func:`undo` plays the last step backwards. A version made from a
version starts with its parent's manifest and steps (which its own undo does not remove).

:func:`diff` lists what differs between two datasets of the same base, image by image; :func:`dataset_files`
lists every image of any dataset with its class now.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cnndash.data import catalog, manifests, startup
from cnndash.data.catalog import check_dataset_name, transaction
from cnndash.data.contents import Base, resolve_base
from cnndash.data.folds import labelled_files
from cnndash.data.images import DatasetError
from cnndash.data.startup import VERSION_RECORD

__all__ = ["EDIT_OPS", "VERSION_RECORD"]
EDIT_OPS = manifests.EDIT_OPS


@dataclass
class VersionRecord:
    """A version as ``data versions`` shows it: where it comes from and its steps."""

    name: str
    parent: str
    base: str
    steps: list[list[dict]] = field(default_factory=list)
    inherited: int = 0  # leading steps that came from the parent version (not undoable here)
    revision: int = 0  # changes with every edit and undo: what a run pins

    def to_dict(self) -> dict:
        return {"parent": self.parent, "base": self.base, "steps": self.steps, "inherited": self.inherited}


def _version_row(conn: sqlite3.Connection, name: str) -> sqlite3.Row | None:
    if not catalog.is_plain_name(name):
        return None
    return conn.execute(
        "SELECT v.* FROM datasets d JOIN versions v ON d.version = v.id WHERE d.name = ?", (name,)
    ).fetchone()


def _require(conn: sqlite3.Connection, name: str) -> sqlite3.Row:
    row = _version_row(conn, name)
    if row is None:
        raise DatasetError(
            "{name} is not a dataset version; make one with `python -m cnndash data version PARENT`.",
            name=repr(name),
        )
    return row


def is_version(name: str, *, data_dir: Path | None = None) -> bool:
    """True for a stored dataset made by :func:`create_version`."""
    if not isinstance(name, str) or not catalog.is_plain_name(name):
        return False
    startup.ready(data_dir)
    return _version_row(catalog.db(data_dir), name) is not None


def _record(conn: sqlite3.Connection, name: str, row: sqlite3.Row) -> VersionRecord:
    inherited = json.loads(row["inherited"])
    return VersionRecord(
        name, row["parent"], row["base"], inherited + manifests.own_steps(conn, row["id"]), len(inherited),
        row["revision"],
    )  # fmt: skip


def read_version(name: str, *, data_dir: Path | None = None) -> VersionRecord:
    """The record of version ``name``; :class:`DatasetError` when ``name`` is not a version."""
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    return _record(conn, name, _require(conn, name))


def list_versions(*, data_dir: Path | None = None) -> list[VersionRecord]:
    """Every stored version, sorted by name."""
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    rows = conn.execute(
        "SELECT d.name AS name, v.* FROM datasets d JOIN versions v ON d.version = v.id ORDER BY d.name"
    ).fetchall()
    return [_record(conn, row["name"], row) for row in rows]


def base_of(info: sqlite3.Row, data_dir: Path | None = None) -> Base:
    """The :class:`Base` a version (or snapshot) row is built on."""
    content = (
        catalog.get_content(catalog.db(data_dir), info["base_content"]) if info["base_content"] else None
    )
    return Base(info["base"], content=content, path=Path(info["base_path"]) if info["base_path"] else None)


def create_version(parent: str, name: str | None = None, *, data_dir: Path | None = None) -> str:
    """A new version of ``parent`` (a built-in, a stored dataset, a version, a folder or zip) with no
    edits yet; returns its name (``name``, or ``<parent>-edit``, ``-edit-2``, … when none is given)."""
    startup.ready(data_dir)
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(str(parent)).stem.split(":")[0]).strip("-._") or "data"
    wanted = check_dataset_name(name if name is not None else f"{stem}-edit")
    conn = catalog.db(data_dir)
    source = _version_row(conn, str(parent))
    base, rows = None, []
    if source is None:
        base = resolve_base(str(parent), data_dir)
        if base is None:  # the same "Unknown dataset" error as everywhere else
            labelled_files(parent, data_dir=data_dir)
            raise DatasetError("{parent} cannot be the base of a version.", parent=repr(parent))
        rows = manifests.base_rows(base.root(data_dir))
    with transaction(conn):
        final = catalog.free_name(conn, wanted, "error" if name is not None else "suffix")
        inherited = "[]"
        if source is not None:
            source = _require(conn, str(parent))  # as it is now, under the write lock
            base, rows = base_of(source, data_dir), manifests.version_rows(conn, source["id"])
            inherited = json.dumps(_record(conn, str(parent), source).steps)
        version = startup.create_version_rows(conn, str(parent), base, rows)
        conn.execute("UPDATE versions SET inherited = ? WHERE id = ?", (inherited, version))
        catalog.point_name(conn, final, version=version)
    return final


def _from_parent(conn: sqlite3.Connection, version: sqlite3.Row, name: str, path: str) -> str:
    """The origin of the image a run trained on the version's parent calls ``path``: its origin (what
    runs record), or its path in the parent as the parent is now."""
    if conn.execute(
        "SELECT 1 FROM version_images WHERE version = ? AND origin = ?", (version["id"], path)
    ).fetchone():
        return path
    parent = _version_row(conn, version["parent"])
    origin = path if parent is None else manifests.origin_of(conn, parent["id"], path)
    if (
        origin is None
        or not conn.execute(
            "SELECT 1 FROM version_images WHERE version = ? AND origin = ?", (version["id"], origin)
        ).fetchone()
    ):
        raise DatasetError(
            "Image {path} is not in version {name} (removed already?).", path=repr(path), name=repr(name)
        )
    return origin


def _edit(name: str, edits: list[dict], data_dir: Path | None, *, parent_paths: bool) -> int:
    if not edits:
        raise DatasetError("No edits given; nothing changed.")
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    with transaction(conn):  # resolve and apply under the write lock: no other edit can interleave
        version = _require(conn, name)
        seq = manifests.new_step(conn, version["id"])
        recorded = []
        for edit in edits:
            if parent_paths and "path" in edit:
                edit = {**edit, "origin": _from_parent(conn, version, name, str(edit["path"]))}
            resolved = manifests.resolve(conn, version["id"], edit)
            manifests.apply(conn, version["id"], seq, resolved)
            recorded.append(resolved)
        manifests.finish_step(conn, version["id"], seq, recorded)
        manifests.check_version(conn, version["id"])
        return len(json.loads(version["inherited"])) + len(manifests.own_steps(conn, version["id"]))


def edit_version(name: str, edits: list[dict], *, data_dir: Path | None = None) -> int:
    """Apply ``edits`` to version ``name`` as one step (all or nothing); returns the number of steps.

    Edits: ``{"op": "relabel", "path": P, "to": CLASS}``, ``{"op": "remove", "path": P}``,
    ``{"op": "merge", "classes": [A, B, …], "into": C}``, ``{"op": "rename", "from": A, "to": B}``;
    ``P`` is an image's path in the version as it is now (``class_name/file.png``) or its origin (its
    path in the base, as ``data files`` lists it); a path now wins where both could match."""
    return _edit(name, edits, data_dir, parent_paths=False)


def edit_from_parent(name: str, edits: list[dict], *, data_dir: Path | None = None) -> int:
    """:func:`edit_version` with images named as a run trained on the version's *parent* names them (their
    origin, or their path in the parent), wherever earlier edits of this version have moved them."""
    return _edit(name, edits, data_dir, parent_paths=True)


def relabel(name: str, path: str, to: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "relabel", "path": path, "to": to}], data_dir=data_dir)


def remove(name: str, path: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "remove", "path": path}], data_dir=data_dir)


def merge_classes(name: str, classes: list[str], into: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "merge", "classes": classes, "into": into}], data_dir=data_dir)


def rename_class(name: str, old: str, new: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "rename", "from": old, "to": new}], data_dir=data_dir)


def undo(name: str, *, data_dir: Path | None = None) -> list[dict]:
    """Undo the last step of version ``name``; returns the edits undone."""
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    with transaction(conn):
        undone = manifests.undo_step(conn, _require(conn, name)["id"])
    if undone is None:
        raise DatasetError("Version {name} has no edits of its own to undo.", name=repr(name))
    return undone


# --------------------------------------------------------------------------------------------------
# Reading: any dataset's images and two datasets compared


def manifest_of(name: str, *, data_dir: Path | None = None) -> tuple[str, dict[str, tuple[str, str]]]:
    """``(base, {origin: (class, path now)})`` of any dataset; ``base`` identifies the files it is built on."""
    startup.ready(data_dir)
    conn = catalog.db(data_dir)
    version = _version_row(conn, name)
    if version is not None:
        rows = manifests.version_rows(conn, version["id"])
        base = version["base_content"] or version["base_path"]
    else:
        found = resolve_base(name, data_dir)
        if found is None:
            labelled_files(name, data_dir=data_dir)  # raises the "Unknown dataset" error
            raise DatasetError("{name} has no images to compare.", name=repr(name))
        rows = manifests.base_rows(found.root(data_dir))
        base = found.content.id if found.content is not None else str(found.path)
    return str(base), {origin: (cls, path) for origin, _, cls, path in rows}


def base_manifest(base: str, *, data_dir: Path | None = None) -> tuple[Path, dict[str, list[str]]]:
    """A dataset that is not a version: its root folder and ``{origin: [split prefix, class, file]}``."""
    startup.ready(data_dir)
    found = resolve_base(base, data_dir)
    if found is None:
        labelled_files(base, data_dir=data_dir)  # raises the "Unknown dataset" error
        raise DatasetError("{base} is a version, not a base dataset.", base=repr(base))
    root = found.root(data_dir)
    rows = manifests.base_rows(root)
    return root, {o: [prefix, cls, path[len(prefix) + len(cls) + 1 :]] for o, prefix, cls, path in rows}


def diff(a: str, b: str, *, data_dir: Path | None = None) -> pd.DataFrame:
    """Image-by-image differences from dataset ``a`` to ``b`` (same base): columns ``change``
    (``relabelled``, ``removed``, ``added``, ``moved``), ``origin``, ``path_a``, ``path_b``,
    ``class_a``, ``class_b``; unchanged images are left out."""
    base_a, man_a = manifest_of(a, data_dir=data_dir)
    base_b, man_b = manifest_of(b, data_dir=data_dir)
    if base_a != base_b:
        raise DatasetError(
            "{a} and {b} are not built on the same files (one may come from a dataset replaced since); only "
            "versions of the same dataset can be compared.",
            a=repr(a),
            b=repr(b),
        )
    rows = []
    for origin in sorted(set(man_a) | set(man_b)):
        ea, eb = man_a.get(origin), man_b.get(origin)
        if ea == eb:
            continue
        change = "added" if ea is None else "removed" if eb is None else (
            "relabelled" if ea[0] != eb[0] else "moved")  # fmt: skip
        rows.append({
            "change": change, "origin": origin,
            "path_a": ea[1] if ea else None, "path_b": eb[1] if eb else None,
            "class_a": ea[0] if ea else None, "class_b": eb[0] if eb else None,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["change", "origin", "path_a", "path_b", "class_a", "class_b"])


def dataset_files(name: str, *, data_dir: Path | None = None) -> pd.DataFrame:
    """Every image of a dataset or version: ``path`` (its path in the base dataset, ``class_name/file.png``
    as in ``label_issues.csv``) and ``class`` (its class now)."""
    files = labelled_files(name, data_dir=data_dir)
    return pd.DataFrame({"path": files.paths, "class": [files.classes[label] for label in files.labels]})
