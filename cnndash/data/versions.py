"""Dataset versions: relabel, remove, merge or rename — recorded, reversible, never touching the parent.

A version is a stored dataset (``data_dir()/datasets/<name>``, so it trains, lists and deletes like any
upload) whose files are hard links to its *base* dataset's files (copies where the filesystem cannot
link): it costs no storage for the images, and no edit ever writes to a file — a relabel moves the link
into another class folder, a remove leaves it out. The base is the first dataset that is not a version
(a built-in, through its ``class_name/<index>.png`` files, an upload, or an image folder).

The hidden file ``.cnndash-version.json`` in the version folder records the parent, the base and the
edits, grouped in *steps* (one click, or "accept all above a threshold", is one step). Edits name images
by their *origin*, the path in the base, so they replay the same way every time; the version folder is
rebuilt from the base and the steps after each change, which is what makes :func:`undo` exact. A version
made from a version starts with its parent's steps (which its own undo does not remove).

:func:`diff` lists what differs between any two datasets of the same base, image by image.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from cnndash.data.builtin import parse_builtin
from cnndash.data.folders import VAL_DIR_NAMES
from cnndash.data.folds import labelled_files, link_or_copy
from cnndash.data.images import DatasetError
from cnndash.data.store import check_dataset_name, claim_name, datasets_dir

VERSION_RECORD = ".cnndash-version.json"
EDIT_OPS = ("relabel", "remove", "merge", "rename")
_RESERVED_CLASS_NAMES = {"train", *VAL_DIR_NAMES}

# origin (path in the base) -> [split prefix ("" or "train/"…), class folder, path inside the class folder]
Manifest = dict[str, list[str]]


@dataclass
class VersionRecord:
    """What ``.cnndash-version.json`` holds."""

    name: str
    parent: str
    base: str
    steps: list[list[dict]] = field(default_factory=list)
    inherited: int = 0  # leading steps that came from the parent version (not undoable here)

    def to_dict(self) -> dict:
        return {"parent": self.parent, "base": self.base, "steps": self.steps, "inherited": self.inherited}


def current_path(entry: list[str]) -> str:
    prefix, cls, tail = entry
    return f"{prefix}{cls}/{tail}"


def _folder(name: str, data_dir: Path | None) -> Path:
    return datasets_dir(data_dir) / check_dataset_name(name)


def is_version(name: str, *, data_dir: Path | None = None) -> bool:
    """True for a stored dataset made by :func:`create_version`."""
    if parse_builtin(name)[0] is not None or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        return False
    return (datasets_dir(data_dir) / name / VERSION_RECORD).is_file()


def read_version(name: str, *, data_dir: Path | None = None) -> VersionRecord:
    """The record of version ``name``; :class:`DatasetError` when ``name`` is not a version."""
    path = _folder(name, data_dir) / VERSION_RECORD
    try:
        data = json.loads(path.read_text())
        return VersionRecord(name, str(data["parent"]), str(data["base"]), list(data["steps"]),
                             int(data.get("inherited", 0)))  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError):
        raise DatasetError(
            f"{name!r} is not a dataset version (no readable {VERSION_RECORD}); make one with "
            "`python -m cnndash data version PARENT`."
        ) from None


def base_manifest(base: str, *, data_dir: Path | None = None) -> tuple[Path, Manifest]:
    """The base dataset's root folder and its manifest (every image where it is)."""
    files = labelled_files(base, data_dir=data_dir)
    manifest: Manifest = {}
    for rel, label in zip(files.paths, files.labels, strict=True):
        parts = rel.split("/")
        cls = files.classes[label]
        at = parts.index(cls)  # 0 for class_name/…, 1 for train/class_name/…
        manifest[rel] = ["".join(p + "/" for p in parts[:at]), cls, "/".join(parts[at + 1 :])]
    return files.root, manifest


def manifest_of(name: str, *, data_dir: Path | None = None) -> tuple[str, Manifest]:
    """(base, manifest) of any dataset: a version's replayed edits, or another dataset as it is."""
    if is_version(name, data_dir=data_dir):
        record = read_version(name, data_dir=data_dir)
        manifest = base_manifest(record.base, data_dir=data_dir)[1]
        for step in record.steps:
            for edit in step:
                apply_edit(manifest, edit)
        return record.base, manifest
    return name, base_manifest(name, data_dir=data_dir)[1]


def _classes(manifest: Manifest) -> set[str]:
    return {entry[1] for entry in manifest.values()}


def _check_class_name(name: str) -> str:
    if (
        not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name
        or name.startswith(".") or name.lower() in _RESERVED_CLASS_NAMES
    ):  # fmt: skip
        raise DatasetError(
            f"Class name {name!r} is not allowed: use a folder name without '/' that does not start with "
            f"'.' and is not one of {', '.join(sorted(_RESERVED_CLASS_NAMES))}."
        )
    return name


def _move(manifest: Manifest, origin: str, cls: str) -> None:
    """Put ``origin`` into class ``cls``, renaming it when another image already has that path."""
    prefix, _, tail = manifest[origin]
    taken = {current_path(e) for o, e in manifest.items() if o != origin}
    candidate = [prefix, cls, tail]
    if current_path(candidate) in taken:
        stem, dot, suffix = tail.rpartition(".")
        marker = zlib.crc32(origin.encode()) % 10**6  # stable across processes; made unique below
        n = 0
        while current_path(candidate) in taken:
            n += 1
            candidate = [prefix, cls, f"{stem or suffix}~{marker}-{n}{dot}{suffix if stem else ''}"]
    manifest[origin] = candidate


def apply_edit(manifest: Manifest, edit: dict) -> None:
    """Apply one recorded edit to ``manifest`` in place (:class:`DatasetError` when it cannot apply)."""
    op = edit.get("op")
    if op in ("relabel", "remove"):
        origin = edit["origin"]
        if origin not in manifest:
            raise DatasetError(
                f"Image {edit.get('path', origin)!r} is not in this version (removed before?)."
            )
        if op == "remove":
            del manifest[origin]
        else:
            _move(manifest, origin, edit["to"])
    elif op in ("merge", "rename"):
        sources = edit["classes"] if op == "merge" else [edit["from"]]
        for origin, entry in list(manifest.items()):
            if entry[1] in sources:
                _move(manifest, origin, edit["into"] if op == "merge" else edit["to"])
    else:
        raise DatasetError(f"Unknown edit {op!r}; use one of {', '.join(EDIT_OPS)}.")


def _resolve(manifest: Manifest, edit: dict) -> dict:
    """A user's edit (images named by their current path) checked and turned into a recorded one."""
    op, classes = edit.get("op"), _classes(manifest)
    if op in ("relabel", "remove"):
        by_path = {current_path(e): o for o, e in manifest.items()}
        path = str(edit.get("path", ""))
        if path not in by_path:
            raise DatasetError(f"No image {path!r} in this version; use a path listed by the dataset.")
        out = {"op": op, "path": path, "origin": by_path[path]}
        if op == "relabel":
            if edit.get("to") not in classes:
                raise DatasetError(
                    f"Cannot relabel to {edit.get('to')!r}: classes are {', '.join(sorted(classes))}."
                )
            out["to"] = edit["to"]
        return out
    if op == "merge":
        sources = [str(c) for c in edit.get("classes", [])]
        missing = [c for c in sources if c not in classes]
        if len(sources) < 2 or missing:
            raise DatasetError(
                f"Merge needs two or more existing classes; unknown: {', '.join(missing) or '-'}."
            )
        into = _check_class_name(str(edit.get("into") or sources[0]))
        if into in classes and into not in sources:
            raise DatasetError(f"Cannot merge into {into!r}: it is another existing class; pick a new name.")
        return {"op": "merge", "classes": sources, "into": into}
    if op == "rename":
        old, new = str(edit.get("from")), _check_class_name(str(edit.get("to")))
        if old not in classes:
            raise DatasetError(f"No class {old!r} to rename; classes are {', '.join(sorted(classes))}.")
        if new in classes:
            raise DatasetError(f"Class {new!r} exists already; merge the classes instead of renaming.")
        return {"op": "rename", "from": old, "to": new}
    raise DatasetError(f"Unknown edit {op!r}; use one of {', '.join(EDIT_OPS)}.")


def _build(record: VersionRecord, data_dir: Path | None) -> None:
    """(Re)write the version folder from the base and the steps, then swap it into place."""
    root, manifest = base_manifest(record.base, data_dir=data_dir)
    for step in record.steps:
        for edit in step:
            apply_edit(manifest, edit)
    if len(_classes(manifest)) < 2:
        raise DatasetError("That edit would leave fewer than 2 classes; a classifier needs at least 2.")
    folder = datasets_dir(data_dir)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".staging-{record.name}-"))
    try:
        for origin, entry in manifest.items():
            target = staging / current_path(entry)
            target.parent.mkdir(parents=True, exist_ok=True)
            link_or_copy(root / origin, target)
        (staging / VERSION_RECORD).write_text(json.dumps(record.to_dict(), indent=1))
        final = folder / record.name
        trash = folder / f".trash-{staging.name}"
        if final.exists():
            final.rename(trash)
        staging.rename(final)
        shutil.rmtree(trash, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def create_version(parent: str, name: str | None = None, *, data_dir: Path | None = None) -> str:
    """A new version of ``parent`` (a built-in, a stored dataset, a version, a folder or zip) with no
    edits yet; returns its name (``name``, or ``<parent>-edit``, ``-edit-2``, … when none is given)."""
    if is_version(parent, data_dir=data_dir):
        record_parent = read_version(parent, data_dir=data_dir)
        base, steps = record_parent.base, [list(s) for s in record_parent.steps]
    else:
        labelled_files(parent, data_dir=data_dir)  # the parent must load before anything is written
        base, steps = parent, []
    if name is None:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(parent).stem.split(":")[0]).strip("-._") or "data"
        stem = f"{stem}-edit"
    check_dataset_name(name or stem)
    claimed = claim_name(datasets_dir(data_dir), name or stem, suffix=name is None)
    record = VersionRecord(claimed.name, parent, base, steps, inherited=len(steps))
    try:
        _build(record, data_dir)
    except BaseException:
        shutil.rmtree(claimed, ignore_errors=True)
        raise
    return claimed.name


def edit_version(name: str, edits: list[dict], *, data_dir: Path | None = None) -> int:
    """Apply ``edits`` to version ``name`` as one step (all or nothing); returns the number of steps.

    Edits: ``{"op": "relabel", "path": P, "to": CLASS}``, ``{"op": "remove", "path": P}``,
    ``{"op": "merge", "classes": [A, B, …], "into": C}``, ``{"op": "rename", "from": A, "to": B}``;
    ``P`` is an image's path in the version as it is now (``class_name/file.png``)."""
    if not edits:
        raise DatasetError("No edits given; nothing changed.")
    record = read_version(name, data_dir=data_dir)
    manifest = manifest_of(name, data_dir=data_dir)[1]
    step = []
    for edit in edits:
        resolved = _resolve(manifest, edit)
        apply_edit(manifest, resolved)
        step.append(resolved)
    record.steps.append(step)
    _build(record, data_dir)
    return len(record.steps)


def edit_from_parent(name: str, edits: list[dict], *, data_dir: Path | None = None) -> int:
    """:func:`edit_version` with images named by their path in the version's *parent* (what a run
    trained on the parent calls them), wherever earlier edits of this version have moved them."""
    record = read_version(name, data_dir=data_dir)
    parent_manifest = manifest_of(record.parent, data_dir=data_dir)[1]
    by_parent_path = {current_path(e): o for o, e in parent_manifest.items()}
    manifest = manifest_of(name, data_dir=data_dir)[1]
    resolved = []
    for edit in edits:
        if "path" in edit:
            origin = by_parent_path.get(str(edit["path"]))
            if origin is None or origin not in manifest:
                raise DatasetError(f"Image {edit['path']!r} is not in version {name!r} (removed already?).")
            edit = {**edit, "path": current_path(manifest[origin])}
        resolved.append(edit)
    return edit_version(name, resolved, data_dir=data_dir)


def relabel(name: str, path: str, to: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "relabel", "path": path, "to": to}], data_dir=data_dir)


def remove(name: str, path: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "remove", "path": path}], data_dir=data_dir)


def merge_classes(name: str, classes: list[str], into: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "merge", "classes": classes, "into": into}], data_dir=data_dir)


def rename_class(name: str, old: str, new: str, *, data_dir: Path | None = None) -> int:
    return edit_version(name, [{"op": "rename", "from": old, "to": new}], data_dir=data_dir)


def undo(name: str, *, data_dir: Path | None = None) -> list[dict]:
    """Drop the last step of version ``name`` and rebuild it; returns the edits undone."""
    record = read_version(name, data_dir=data_dir)
    if len(record.steps) <= record.inherited:
        raise DatasetError(f"Version {name!r} has no edits of its own to undo.")
    undone = record.steps.pop()
    _build(record, data_dir)
    return undone


def list_versions(*, data_dir: Path | None = None) -> list[VersionRecord]:
    """Every stored version, sorted by name."""
    folder = datasets_dir(data_dir)
    names = (
        sorted(p.name for p in folder.iterdir() if (p / VERSION_RECORD).is_file()) if folder.is_dir() else []
    )
    return [read_version(n, data_dir=data_dir) for n in names]


def diff(a: str, b: str, *, data_dir: Path | None = None) -> pd.DataFrame:
    """Image-by-image differences from dataset ``a`` to ``b`` (same base): columns ``change``
    (``relabelled``, ``removed``, ``added``, ``moved``), ``origin``, ``path_a``, ``path_b``,
    ``class_a``, ``class_b``; unchanged images are left out."""
    base_a, man_a = manifest_of(a, data_dir=data_dir)
    base_b, man_b = manifest_of(b, data_dir=data_dir)
    if base_a != base_b:
        raise DatasetError(f"{a!r} comes from {base_a!r} and {b!r} from {base_b!r}; only versions of the "
                           "same dataset can be compared.")  # fmt: skip
    rows = []
    for origin in sorted(set(man_a) | set(man_b)):
        ea, eb = man_a.get(origin), man_b.get(origin)
        if ea == eb:
            continue
        change = "added" if ea is None else "removed" if eb is None else (
            "relabelled" if ea[1] != eb[1] else "moved")  # fmt: skip
        rows.append({
            "change": change, "origin": origin,
            "path_a": current_path(ea) if ea else None, "path_b": current_path(eb) if eb else None,
            "class_a": ea[1] if ea else None, "class_b": eb[1] if eb else None,
        })  # fmt: skip
    return pd.DataFrame(rows, columns=["change", "origin", "path_a", "path_b", "class_a", "class_b"])
