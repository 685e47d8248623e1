"""The machinery of the fault-injection test (test_fault_injection.py): CLI processes started, killed and
waited for through their handles, the test's own model of the dataset store, and the operations.

Processes: each operation is ``cnndash.cli.main(argv)`` — the code ``python -m cnndash`` runs — in a
process of its own, forked from a server that imported cnndash once (``multiprocessing``'s forkserver),
because a fresh interpreter spends seconds importing torch and the test must run many of them. Each has
its own database connection, owner lock and everything else a CLI process has; ``kill`` is SIGKILL
through the handle of the process the test started, never a pid read from anywhere.

Operations are small classes: ``argv`` (the command), ``claims`` (what it touches, so a batch runs only
operations whose outcome is well defined together) and ``check`` (what must hold after the batch, given
how it ended: ``ok``, ``failed`` or ``killed``). Adding an operation (train, stop, …) is adding a class
and drawing it in the state machine.
"""

from __future__ import annotations

import hashlib
import io
import multiprocessing
import os
import re
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from cnndash.data import catalog, list_datasets, load_dataset, quota_used, versions
from cnndash.data.contents import content_root, measure

OK, FAILED, KILLED = "ok", "failed", "killed"


def run_cli(argv: list[str], env: dict[str, str | None], out: str, err: str) -> None:
    """A CLI process: ``env`` applied, stdout/stderr to files, ``main(argv)``'s status as exit status."""
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    for fd, path in ((1, out), (2, err)):
        target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, fd)
        os.close(target)
    from cnndash.cli import main

    code = main(argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


_context = None


def context() -> multiprocessing.context.BaseContext:
    """The forkserver context, its server preloaded with the CLI (started on first use, once)."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(["cnndash.cli", __name__])
    return _context


@dataclass
class Job:
    """One operation's process and how it ended."""

    op: Operation
    process: multiprocessing.process.BaseProcess
    out: Path
    err: Path
    kill_after: float | None = None  # seconds after the start; None: let it finish

    @property
    def outcome(self) -> str:
        if self.kill_after is not None and self.process.exitcode == -9:
            return KILLED
        return OK if self.process.exitcode == 0 else FAILED

    def stdout(self) -> str:
        return self.out.read_text()

    def stderr(self) -> str:
        return self.err.read_text()


# --------------------------------------------------------------------------------------------------
# Zips the imports use: content known file by file, so "intact" can be checked byte for byte


@dataclass(frozen=True)
class ZipSpec:
    key: str
    path: Path
    files: dict[str, str]  # path in the dataset -> SHA-256 of its bytes

    def classes(self) -> dict[str, str]:
        """origin -> class, as the dataset is imported."""
        return {path: path.split("/")[0] for path in self.files}


def make_zips(folder: Path) -> dict[str, ZipSpec]:
    """Three small datasets (one of ~0.4 MB, so a 1 MiB quota holds two of it at most)."""
    plans = {
        "z0": ({"cat": 4, "dog": 4, "fox": 4}, 8),
        "z1": ({"cat": 6, "dog": 6}, 8),
        "z2": ({"a": 8, "b": 8}, 96),
    }
    specs = {}
    for key, (counts, size) in plans.items():
        rng = np.random.default_rng(sum(map(ord, key)))
        files: dict[str, str] = {}
        path = folder / f"{key}.zip"
        with zipfile.ZipFile(path, "w") as archive:
            for cls, n in counts.items():
                for i in range(n):
                    buffer = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "PNG")
                    archive.writestr(f"{cls}/{i}.png", buffer.getvalue())
                    files[f"{cls}/{i}.png"] = hashlib.sha256(buffer.getvalue()).hexdigest()
        specs[key] = ZipSpec(key, path, files)
    return specs


def replay(state: dict[str, str], steps: list[list[dict]]) -> dict[str, str]:
    """The test's own reading of recorded edits (origin -> class), to compare with the store's."""
    out = dict(state)
    for step in steps:
        for edit in step:
            if edit["op"] == "relabel":
                out[edit["origin"]] = edit["to"]
            elif edit["op"] == "remove":
                del out[edit["origin"]]
            else:
                sources = edit["classes"] if edit["op"] == "merge" else [edit["from"]]
                into = edit["into"] if edit["op"] == "merge" else edit["to"]
                out = {o: into if c in sources else c for o, c in out.items()}
    return out


# --------------------------------------------------------------------------------------------------
# The store as it is, read back after every batch


@dataclass
class Stored:
    content: str
    zip: str


@dataclass
class Version:
    base_content: str
    steps: list[list[dict]]
    state: dict[str, str]  # origin -> class now
    paths: dict[str, str]  # origin -> path now
    own: int = 0  # steps of its own (undoable)


@dataclass
class Snapshot:
    names: dict[str, Stored | Version] = field(default_factory=dict)

    def stored(self) -> dict[str, Stored]:
        return {n: v for n, v in self.names.items() if isinstance(v, Stored)}

    def versions(self) -> dict[str, Version]:
        return {n: v for n, v in self.names.items() if isinstance(v, Version)}


def read_store(data: Path, zips: dict[str, ZipSpec], content_zip: dict[str, str]) -> Snapshot:
    """Every listed dataset, checked to load and decode; a stored one must be exactly one of the zips."""
    conn = catalog.db(data)
    snap = Snapshot()
    for name in list_datasets(data):
        imageset = load_dataset(name, data_dir=data)  # nothing half-visible: every listed dataset loads
        for part in (imageset.train, imageset.val):
            for i in range(len(part)):
                part[i]
        row = catalog.dataset_row(conn, name)
        if row["content"] is not None:
            content = catalog.get_content(conn, row["content"])
            root = content_root(content, data)
            files = {
                p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in root.rglob("*")
                if p.is_file() and not p.name.startswith(".")
            }
            matches = [key for key, spec in zips.items() if spec.files == files]
            assert len(matches) == 1, f"{name} holds files of no single upload (a mix or a damaged copy)"
            content_zip.setdefault(content.id, matches[0])
            assert content_zip[content.id] == matches[0], "a content changed after it was published"
            snap.names[name] = Stored(content.id, matches[0])
        else:
            record = versions.read_version(name, data_dir=data)
            info = conn.execute(
                "SELECT base_content FROM versions WHERE id = ?", (row["version"],)
            ).fetchone()
            files = versions.dataset_files(name, data_dir=data)
            _, manifest = versions.manifest_of(name, data_dir=data)
            snap.names[name] = Version(
                info[0], record.steps, dict(zip(files["path"], files["class"], strict=True)),
                {o: p for o, (_, p) in manifest.items()}, len(record.steps) - record.inherited,
            )  # fmt: skip
    return snap


def check_storage(data: Path) -> None:
    """The ledger equals the bytes on disk, each content holds what was measured, nothing else is stored,
    and no reservation outlives its (dead) importer."""
    conn = catalog.db(data)
    rows = conn.execute("SELECT folder, bytes FROM contents").fetchall()
    assert all(measure(data / folder)[0] == size for folder, size in rows), "a content's bytes changed"
    assert quota_used(data) == sum(size for _, size in rows), "the quota ledger differs from the bytes stored"
    assert conn.execute("SELECT count(*) FROM reservations").fetchone()[0] == 0, "a dead import's reservation"
    folder = catalog.contents_dir(data)
    on_disk = {p.name for p in folder.iterdir()} - {catalog.OWNERS_DIR} if folder.is_dir() else set()
    assert on_disk == {Path(f).name for f, _ in rows}, f"orphans after a sweep: {on_disk}"
    assert not conn.execute("SELECT count(*) FROM trash").fetchone()[0], "a freed folder was not removed"


def new_tmp(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=prefix))


# --------------------------------------------------------------------------------------------------
# Operations


class Operation:
    """One CLI command of a batch; see the module docstring."""

    kind = ""

    def argv(self) -> list[str]:
        raise NotImplementedError

    def claims(self) -> list[tuple[str, str]]:
        """``(object, mode)`` pairs: ``"own"`` excludes every other claim on the object, ``"read"`` every
        claim but another ``read``, ``"edit:<image>"`` an ``own``, a ``read`` and the same image."""
        raise NotImplementedError

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        raise NotImplementedError


def compatible(ops: list[Operation]) -> list[Operation]:
    """The longest prefix-wise selection of ``ops`` whose claims do not conflict."""
    chosen: list[Operation] = []
    held: dict[str, set[str]] = {}
    for op in ops:
        claims = op.claims()
        if all(_fits(mode, held.get(obj, set())) for obj, mode in claims):
            chosen.append(op)
            for obj, mode in claims:
                held.setdefault(obj, set()).add(mode)
    return chosen


def _fits(mode: str, held: set[str]) -> bool:
    """``own`` excludes everything; ``read`` (a version made from it) needs the object unchanged; edits of
    one version go together when they edit different images."""
    if not held:
        return True
    if mode == "own" or "own" in held:
        return False
    if mode == "read":
        return held == {"read"}
    return "read" not in held and mode not in held


def family(name: str) -> str:
    """The names a suffixed import may give for ``name``: ``a``, ``a-2``, ``a-3``, … share ``family:a``."""
    return "family:" + re.sub(r"-\d+$", "", name)


def one_line_error(job: Job) -> None:
    """A refused command says why in one line (never a traceback)."""
    err = job.stderr().strip().splitlines()
    assert job.process.exitcode == 2, (
        f"{job.op.argv()} ended with {job.process.exitcode}: {job.stderr()[-800:]}"
    )
    assert err and err[-1].startswith("error: "), job.stderr()[-800:]


@dataclass
class Import(Operation):
    """``data import ZIP --name STEM`` (a taken name gets a free one) or, with ``replace``, ``--replace``."""

    zip: ZipSpec
    name: str
    replace: bool = False
    kind = "import"

    def argv(self) -> list[str]:
        return [
            "data",
            "import",
            str(self.zip.path),
            "--name",
            self.name,
            *(["--replace"] if self.replace else []),
        ]

    def claims(self) -> list[tuple[str, str]]:
        # An import under a taken name takes a free one of its family (a, a-2, …): one that a delete or a
        # replace running at the same time may just have freed or taken.
        if self.replace:
            return [(self.name, "own"), (family(self.name), "own")]
        return [(family(self.name), "read")]

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        old, new = before.names.get(self.name), after.names.get(self.name)
        if self.replace:
            if isinstance(old, Version):
                assert job.outcome != OK and new == old, "an upload replaced a version"
                return
            replaced = (
                isinstance(new, Stored)
                and new.zip == self.zip.key
                and (old is None or new.content != old.content)
            )
            if job.outcome == OK:
                assert replaced, f"replace of {self.name} reported success but the name holds {new}"
            elif job.outcome == FAILED:
                assert new == old, f"a failed replace changed {self.name}: {old} -> {new}"
            else:
                assert new == old or replaced, f"a killed replace left {self.name} as {new}"
        elif job.outcome == OK:
            printed = job.stdout().split()[-1]
            made = after.names.get(printed)
            assert printed not in before.names and isinstance(made, Stored) and made.zip == self.zip.key, (
                f"import reported {printed!r} but it holds {made}"
            )


@dataclass
class Delete(Operation):
    """``data delete NAME``: refused while versions are built on it."""

    name: str
    kind = "delete"

    def argv(self) -> list[str]:
        return ["data", "delete", self.name]

    def claims(self) -> list[tuple[str, str]]:
        return [(self.name, "own"), (family(self.name), "own")]

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        old, new = before.names.get(self.name), after.names.get(self.name)
        in_use = isinstance(old, Stored) and any(
            v.base_content == old.content for v in before.versions().values()
        )
        if in_use and job.outcome != KILLED:
            one_line_error(job)
            assert "version" in job.stderr(), job.stderr()
        if job.outcome == OK:
            assert new is None and old is not None and not in_use
        elif job.outcome == FAILED:
            assert new == old, f"a refused delete changed {self.name}"
        else:
            assert new in (None, old)


@dataclass
class MakeVersion(Operation):
    """``data version PARENT --name NAME``."""

    parent: str
    name: str
    kind = "version"

    def argv(self) -> list[str]:
        return ["data", "version", self.parent, "--name", self.name]

    def claims(self) -> list[tuple[str, str]]:
        return [(self.name, "own"), (self.parent, "read")]

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        parent, made = before.names.get(self.parent), after.names.get(self.name)
        ok = isinstance(made, Version) and self.name not in before.names and made.own == 0
        if ok and isinstance(parent, Stored):
            ok = made.base_content == parent.content and not made.steps
        elif ok and isinstance(parent, Version):
            ok = (
                made.base_content == parent.base_content
                and made.steps == parent.steps
                and made.state == parent.state
            )
        if job.outcome == OK:
            assert ok, f"version {self.name} of {self.parent} reported success but is {made}"
        elif job.outcome == FAILED:
            assert made == before.names.get(self.name)
        else:
            assert made == before.names.get(self.name) or ok


@dataclass
class Edit(Operation):
    """``data relabel|remove VERSION PATH [CLASS]``: several of one version may run at once (other images)."""

    version: str
    origin: str
    path: str
    to: str | None  # None: remove
    kind = "edit"

    def argv(self) -> list[str]:
        if self.to is None:
            return ["data", "remove", self.version, self.path]
        return ["data", "relabel", self.version, self.path, self.to]

    def claims(self) -> list[tuple[str, str]]:
        return [(self.version, f"edit:{self.origin}")]

    def recorded(self) -> dict:
        edit = {"op": "remove" if self.to is None else "relabel", "path": self.path, "origin": self.origin}
        return edit if self.to is None else {**edit, "to": self.to}

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        old, new = before.versions().get(self.version), after.versions().get(self.version)
        assert old is not None and new is not None, "a version vanished under an edit"
        assert new.steps[: len(old.steps)] == old.steps, "an edit rewrote or lost an earlier step"
        added = new.steps[len(old.steps) :]
        count = sum(step == [self.recorded()] for step in added)
        if job.outcome == OK:
            assert count == 1, f"{self.argv()} reported success but is recorded {count} times"
        elif job.outcome == FAILED:
            assert count == 0, f"{self.argv()} failed but was recorded"
        else:
            assert count <= 1


@dataclass
class WholeEdit(Operation):
    """``data merge``, ``data rename`` or ``data undo`` of a version: one at a time on that version."""

    version: str
    args: list[str]  # ["merge", A, B, "--into", C] | ["rename", OLD, NEW] | ["undo"]
    kind = "whole-edit"

    def argv(self) -> list[str]:
        return ["data", self.args[0], self.version, *self.args[1:]]

    def claims(self) -> list[tuple[str, str]]:
        return [(self.version, "own")]

    def check(self, job: Job, before: Snapshot, after: Snapshot) -> None:
        old, new = before.versions()[self.version], after.versions().get(self.version)
        assert new is not None, "a version vanished under an edit"
        if self.args[0] == "undo":
            done = new.steps == old.steps[:-1] and old.own > 0
        else:
            op = self.args[0]
            edit = (
                {"op": "merge", "classes": self.args[1:-2], "into": self.args[-1]}
                if op == "merge"
                else {"op": "rename", "from": self.args[1], "to": self.args[2]}
            )
            done = new.steps == [*old.steps, [edit]]
        if job.outcome == OK:
            assert done, f"{self.argv()} reported success but the version's steps are {new.steps[-3:]}"
        elif job.outcome == FAILED:
            assert new.steps == old.steps, f"{self.argv()} failed but changed the version"
        else:
            assert done or new.steps == old.steps
