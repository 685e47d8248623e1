"""A version's manifest in tables: every image's *origin* (its path in the base, its identity), its class
and its path now — and the edits on it, each costing the rows of the images it changes.

An edit step records, for every image it changes, the row before and after (``step_changes``); undo
plays them backwards. Nothing is replayed to read a version: ``version_images`` *is* its current state,
so loading it is one query and no folder of links exists. A *snapshot* freezes a version's rows for a
run that trained on it (:mod:`cnndash.data.pins`).

Rows are ``(origin, prefix, class, path)``: ``prefix`` is ``""`` for a ``class_name/…`` layout or the
split folder (``"train/"``, ``"val/"``) of a ``train/`` + ``val/`` one; ``path`` is
``prefix + class + "/" + file``. A path stays unique in a version: an image moved next to one of the same
name gets ``name~<marker>-<n>.ext`` (the marker is a CRC of its origin, stable across processes).
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from pathlib import Path

from cnndash.data.folders import VAL_DIR_NAMES, Items, image_set, scan_image_folder
from cnndash.data.images import DatasetError, ImageSet

Row = tuple[str, str, str, str]  # origin, prefix, class, path
EDIT_OPS = ("relabel", "remove", "merge", "rename")
RESERVED_CLASS_NAMES = {"train", *VAL_DIR_NAMES}


def base_rows(root: Path) -> list[Row]:
    """The rows of a base dataset's folder ``root`` (its dataset root): every image where it is."""
    classes, parts = scan_image_folder(root)
    rows = []
    for part, items in parts.items():
        for file, label in items:
            rel = Path(file).relative_to(root).as_posix()
            rows.append((rel, "" if part == "all" else rel.split("/", 1)[0] + "/", classes[label], rel))
    return rows


def _part(prefix: str) -> str:
    return "all" if not prefix else "train" if prefix.lower() == "train/" else "val"


def _walk_key(tail: str) -> tuple:
    """``os.walk`` order inside a class folder (files first, then sub-folders, each sorted)."""
    *folders, name = tail.split("/")
    return (*((1, f) for f in folders), (0, name))


def layout(rows: list[Row]) -> tuple[list[str], dict[str, list[tuple[str, int]]]]:
    """``(classes, {part: [(origin, class index)]})`` in the order an image folder of these rows would be
    scanned: classes sorted, then each class's files as ``os.walk`` lists them."""
    by_part: dict[str, list[Row]] = {}
    for row in rows:
        by_part.setdefault(_part(row[1]), []).append(row)
    classes = sorted({row[2] for row in by_part.get("train", by_part.get("all", []))})
    index = {c: i for i, c in enumerate(classes)}
    parts = {}
    for part, members in by_part.items():
        members.sort(key=lambda r: (r[2], _walk_key(r[3][len(r[1]) + len(r[2]) + 1 :])))
        parts[part] = [(r[0], index.get(r[2], -1)) for r in members]
    return classes, parts


def check_version(conn: sqlite3.Connection, version: int) -> None:
    """What every image-folder dataset must be: two classes or more, no val class that train lacks."""
    trained = {
        r[0] for r in conn.execute(
            "SELECT DISTINCT class FROM version_images WHERE version = ? AND (prefix = '' OR lower(prefix) = "
            "'train/')", (version,),
        )
    }  # fmt: skip
    if len(trained) < 2:
        raise DatasetError("That edit would leave fewer than 2 classes; a classifier needs at least 2.")
    validated = {
        r[0] for r in conn.execute(
            "SELECT DISTINCT class FROM version_images WHERE version = ? AND prefix <> '' AND lower(prefix) "
            "<> 'train/'", (version,),
        )
    }  # fmt: skip
    if validated - trained:
        raise DatasetError(
            "That edit would leave class(es) {validated} in val/ with no training image; every val class "
            "needs training images too.",
            validated=", ".join(sorted(validated - trained)),
        )


def load_rows(name: str, root: Path, rows: list[Row], *, val_fraction: float, seed: int) -> ImageSet:
    """An :class:`ImageSet` of ``rows`` whose files are the base's (``root / origin``)."""
    classes, parts = layout(rows)
    files: dict[str, Items] = {p: [(root / o, label) for o, label in items] for p, items in parts.items()}
    return image_set(name, root, classes, files, val_fraction=val_fraction, seed=seed)


# --------------------------------------------------------------------------------------------------
# Reading


def version_rows(conn: sqlite3.Connection, version: int) -> list[Row]:
    query = "SELECT origin, prefix, class, path FROM version_images WHERE version = ?"
    return [tuple(r) for r in conn.execute(query, (version,))]


def snapshot_rows(conn: sqlite3.Connection, snapshot: int) -> list[Row]:
    query = "SELECT origin, prefix, class, path FROM snapshot_images WHERE snapshot = ?"
    return [tuple(r) for r in conn.execute(query, (snapshot,))]


def insert_rows(conn: sqlite3.Connection, version: int, rows: list[Row]) -> None:
    conn.executemany(
        "INSERT INTO version_images (version, origin, prefix, class, path) VALUES (?, ?, ?, ?, ?)",
        [(version, *row) for row in rows],
    )


def classes_of(conn: sqlite3.Connection, version: int) -> set[str]:
    return {
        r[0] for r in conn.execute("SELECT DISTINCT class FROM version_images WHERE version = ?", (version,))
    }


def _missing(conn: sqlite3.Connection, version: int, path: str) -> str:
    """Why ``path`` names no image: never did, or an edit (perhaps another process's) moved it."""
    moved = conn.execute(
        "SELECT 1 FROM step_changes WHERE version = ? AND (old_path = ? OR origin = ?) LIMIT 1",
        (version, path, path),
    ).fetchone()
    if moved is not None:
        return (
            f"Image {path!r} was moved or removed by an edit of this version (it changed meanwhile); "
            "`python -m cnndash data files` lists its images now."
        )
    return f"No image {path!r} in this version; use a path listed by `python -m cnndash data files`."


def _has(conn: sqlite3.Connection, version: int, origin: str) -> bool:
    query = "SELECT 1 FROM version_images WHERE version = ? AND origin = ?"
    return conn.execute(query, (version, origin)).fetchone() is not None


def origin_of(conn: sqlite3.Connection, version: int, path: str) -> str | None:
    """The image named ``path`` in the version: its path now, else its origin (what ``data files`` lists)."""
    for column in ("path", "origin"):
        row = conn.execute(
            f"SELECT origin FROM version_images WHERE version = ? AND {column} = ?", (version, path)
        ).fetchone()
        if row is not None:
            return row[0]
    return None


# --------------------------------------------------------------------------------------------------
# Edits: a recorded edit names images by origin, so it applies the same way at any time


def check_class_name(name: str) -> str:
    if (
        not isinstance(name, str) or not name.strip() or "/" in name or "\\" in name
        or name.startswith(".") or name.lower() in RESERVED_CLASS_NAMES
    ):  # fmt: skip
        raise DatasetError(
            "Class name {name} is not allowed: use a folder name without '/' that does not start with '.' "
            "and is not one of {reserved_class_names}.",
            name=repr(name),
            reserved_class_names=", ".join(sorted(RESERVED_CLASS_NAMES)),
        )
    return name


def resolve(conn: sqlite3.Connection, version: int, edit: dict) -> dict:
    """A user's edit (images named by their path now, or their origin) checked and made a recorded one."""
    op, classes = edit.get("op"), classes_of(conn, version)
    if op in ("relabel", "remove"):
        path = str(edit.get("path", edit.get("origin", "")))
        origin = edit.get("origin") or origin_of(conn, version, path)
        if origin is None or not _has(conn, version, origin):
            raise DatasetError(_missing(conn, version, path))
        out = {"op": op, "path": path, "origin": origin}
        if op == "relabel":
            if edit.get("to") not in classes:
                raise DatasetError(
                    "Cannot relabel to {target}: classes are {classes}.",
                    target=repr(edit.get("to")),
                    classes=", ".join(sorted(classes)),
                )
            out["to"] = edit["to"]
        return out
    if op == "merge":
        sources = [str(c) for c in edit.get("classes", [])]
        missing = [c for c in sources if c not in classes]
        if len(sources) < 2 or missing:
            raise DatasetError(
                "Merge needs two or more existing classes; unknown: {missing}.",
                missing=", ".join(missing) or "-",
            )
        into = check_class_name(str(edit.get("into") or sources[0]))
        if into in classes and into not in sources:
            raise DatasetError(
                "Cannot merge into {into}: it is another existing class; pick a new name.", into=repr(into)
            )
        return {"op": "merge", "classes": sources, "into": into}
    if op == "rename":
        old, new = str(edit.get("from")), check_class_name(str(edit.get("to")))
        if old not in classes:
            raise DatasetError(
                "No class {old} to rename; classes are {classes}.",
                old=repr(old),
                classes=", ".join(sorted(classes)),
            )
        if new in classes:
            raise DatasetError(
                "Class {new} exists already; merge the classes instead of renaming.", new=repr(new)
            )
        return {"op": "rename", "from": old, "to": new}
    raise DatasetError("Unknown edit {op}; use one of {edit_ops}.", op=repr(op), edit_ops=", ".join(EDIT_OPS))


def _free_path(conn: sqlite3.Connection, version: int, origin: str, prefix: str, cls: str, tail: str) -> str:
    """``prefix + cls + "/" + tail``, or a marked name when another image already has that path."""
    taken = "SELECT 1 FROM version_images WHERE version = ? AND path = ? AND origin <> ?"
    candidate = f"{prefix}{cls}/{tail}"
    if conn.execute(taken, (version, candidate, origin)).fetchone() is None:
        return candidate
    stem, dot, suffix = tail.rpartition(".")
    marker = zlib.crc32(origin.encode()) % 10**6
    n = 0
    while conn.execute(taken, (version, candidate, origin)).fetchone() is not None:
        n += 1
        candidate = f"{prefix}{cls}/{stem or suffix}~{marker}-{n}{dot}{suffix if stem else ''}"
    return candidate


def _move(conn: sqlite3.Connection, version: int, seq: int, rows: list[Row], to: str) -> None:
    for origin, prefix, cls, path in rows:
        new_path = _free_path(conn, version, origin, prefix, to, path[len(prefix) + len(cls) + 1 :])
        conn.execute(
            "UPDATE version_images SET class = ?, path = ? WHERE version = ? AND origin = ?",
            (to, new_path, version, origin),
        )
        conn.execute(
            "INSERT INTO step_changes (version, seq, origin, prefix, old_class, old_path, new_class, new_path) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (version, seq, origin, prefix, cls, path, to, new_path),
        )


def _rows_where(conn: sqlite3.Connection, version: int, column: str, values: list[str]) -> list[Row]:
    marks = ",".join("?" * len(values))
    query = (
        f"SELECT origin, prefix, class, path FROM version_images WHERE version = ? AND {column} IN ({marks}) "
    )
    return [tuple(r) for r in conn.execute(query + "ORDER BY origin", (version, *values))]


def apply(conn: sqlite3.Connection, version: int, seq: int, edit: dict) -> None:
    """Apply one recorded edit as part of step ``seq`` (:class:`DatasetError` when it cannot apply)."""
    op = edit.get("op")
    if op in ("relabel", "remove"):
        rows = _rows_where(conn, version, "origin", [str(edit.get("origin"))])
        if not rows:
            raise DatasetError(
                "Image {target} is not in this version (removed before?).",
                target=repr(edit.get("path", edit.get("origin"))),
            )
        if op == "relabel":
            _move(conn, version, seq, rows, str(edit["to"]))
            return
        origin, prefix, cls, path = rows[0]
        conn.execute("DELETE FROM version_images WHERE version = ? AND origin = ?", (version, origin))
        conn.execute(
            "INSERT INTO step_changes (version, seq, origin, prefix, old_class, old_path) VALUES (?,?,?,?,?,?)",
            (version, seq, origin, prefix, cls, path),
        )
    elif op in ("merge", "rename"):
        sources = [str(c) for c in (edit["classes"] if op == "merge" else [edit["from"]])]
        _move(
            conn,
            version,
            seq,
            _rows_where(conn, version, "class", sources),
            str(edit["into" if op == "merge" else "to"]),
        )
    else:
        raise DatasetError(
            "Unknown edit {op}; use one of {edit_ops}.", op=repr(op), edit_ops=", ".join(EDIT_OPS)
        )


def new_step(conn: sqlite3.Connection, version: int) -> int:
    """Open the next step of ``version`` (inside the caller's transaction); returns its number."""
    seq = (
        1
        + conn.execute("SELECT coalesce(max(seq), 0) FROM steps WHERE version = ?", (version,)).fetchone()[0]
    )
    conn.execute("INSERT INTO steps (version, seq, edits) VALUES (?, ?, '[]')", (version, seq))
    return seq


def finish_step(conn: sqlite3.Connection, version: int, seq: int, edits: list[dict]) -> None:
    """Record the edits step ``seq`` applied and make it the version's new revision."""
    conn.execute(
        "UPDATE steps SET edits = ? WHERE version = ? AND seq = ?", (json.dumps(edits), version, seq)
    )
    conn.execute("UPDATE versions SET revision = revision + 1 WHERE id = ?", (version,))


def add_step(conn: sqlite3.Connection, version: int, edits: list[dict]) -> int:
    """Apply recorded ``edits`` as the next step (inside the caller's transaction); returns its number."""
    seq = new_step(conn, version)
    for edit in edits:
        apply(conn, version, seq, edit)
    finish_step(conn, version, seq, edits)
    return seq


def undo_step(conn: sqlite3.Connection, version: int) -> list[dict] | None:
    """Undo the last step (its changes played backwards); the edits undone, or None when there is none."""
    row = conn.execute(
        "SELECT seq, edits FROM steps WHERE version = ? ORDER BY seq DESC LIMIT 1", (version,)
    ).fetchone()
    if row is None:
        return None
    changes = conn.execute(
        "SELECT origin, prefix, old_class, old_path, new_path FROM step_changes WHERE version = ? AND seq = ? "
        "ORDER BY id DESC",
        (version, row["seq"]),
    ).fetchall()
    for origin, prefix, old_class, old_path, new_path in changes:
        if new_path is None:  # removed: back in
            insert_rows(conn, version, [(origin, prefix, old_class, old_path)])
        else:
            conn.execute(
                "UPDATE version_images SET class = ?, path = ? WHERE version = ? AND origin = ?",
                (old_class, old_path, version, origin),
            )
    conn.execute("DELETE FROM steps WHERE version = ? AND seq = ?", (version, row["seq"]))
    conn.execute("UPDATE versions SET revision = revision + 1 WHERE id = ?", (version,))
    return json.loads(row["edits"])


def own_steps(conn: sqlite3.Connection, version: int) -> list[list[dict]]:
    rows = conn.execute("SELECT edits FROM steps WHERE version = ? ORDER BY seq", (version,))
    return [json.loads(r[0]) for r in rows]


def snapshot(conn: sqlite3.Connection, version: int, name: str) -> int:
    """The snapshot of ``version`` as it is now (one per revision, copied once): what a pin holds."""
    info = conn.execute("SELECT * FROM versions WHERE id = ?", (version,)).fetchone()
    found = conn.execute(
        "SELECT id FROM snapshots WHERE version = ? AND revision = ?", (version, info["revision"])
    ).fetchone()
    if found is not None:
        return int(found[0])
    steps = len(json.loads(info["inherited"])) + len(own_steps(conn, version))
    cursor = conn.execute(
        "INSERT INTO snapshots (version, revision, name, base, base_content, base_path, steps, created) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, strftime('%s','now'))",
        (version, info["revision"], name, info["base"], info["base_content"], info["base_path"], steps),
    )
    snap = int(cursor.lastrowid)
    conn.execute(
        "INSERT INTO snapshot_images (snapshot, origin, prefix, class, path) "
        "SELECT ?, origin, prefix, class, path FROM version_images WHERE version = ?",
        (snap, version),
    )
    return snap
