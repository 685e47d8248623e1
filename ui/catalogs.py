"""The translation catalogues' sources: which files feed which domain, and the message ids the code uses.

``make i18n`` runs this module: for every domain it extracts the message ids from the domain's files with
Babel's Python extractor (keywords ``_``, ``N_``, ``tr``, ``plural:1,2`` and the typed-error classes) and
updates ``locales/zh_CN/LC_MESSAGES/<domain>.po`` as ``pybabel update`` does (new ids added untranslated,
ids no code uses dropped, translations kept). It is ``pybabel extract`` + ``pybabel update`` through
Babel's API rather than its command line, so the file → domain map below is the only configuration and
``tests/test_i18n.py`` extracts exactly the same ids in memory.

A file belongs to the first domain whose prefix matches its path (:data:`DOMAIN_SOURCES`). A typed error
(:class:`cnndash.errors.UserError` subclass) is extracted by its class name into the domain its class
declares (``domain = "calculator"``; ``engine`` by default), wherever it is raised: ``ui.user_errors``
translates it in that domain. Classes still raised with f-strings are listed in :data:`NOT_YET_TEMPLATED`;
their messages stay English until their raises pass templates and parameters.
"""

from __future__ import annotations

import ast
import io
import string
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_python
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parents[1]
LOCALE = "zh_CN"
PO_DIR = ROOT / "locales" / LOCALE / "LC_MESSAGES"
# Path prefixes of each domain's files, most specific first (the first match wins).
DOMAIN_SOURCES = {
    "calculator": ("pages/conv_calculator.py", "ui/calculator/", "cnndash/stack/", "cnndash/single_layer.py",
                   "cnndash/plots/calculator.py", "cnndash/arith.py", "cnndash/trace.py",
                   "cnndash/trace_diagnosis.py", "cnndash/kernels.py"),
    "learn": ("pages/learn.py", "ui/learn/", "cnndash/lessons/", "cnndash/plots/learn.py"),
    "data": ("pages/data_augmentation.py", "ui/data/"),
    "training": ("pages/training.py", "ui/training/"),
    "evaluation": ("pages/evaluation.py", "ui/evaluation/"),
    "gradcam": ("pages/grad_cam.py", "ui/gradcam/"),
    "common": ("app.py", "pages/", "ui/"),
    "engine": ("cnndash/",),
}  # fmt: skip
DOMAINS = tuple(DOMAIN_SOURCES)
HEADER = (
    "# cnndash in Simplified Chinese: one domain's messages (docs/i18n.md). Terms: docs/zh-CN/glossary.md."
)
KEYWORDS = {"_": None, "N_": None, "tr": None, "plural": (1, 2), "Phrase": None}
# Typed errors whose raises are not templates yet (f-strings): not extracted, shown in English. Empty the
# list as each class's raises become `Error("… {name} …", name=…)`.
NOT_YET_TEMPLATED: frozenset[str] = frozenset()


@dataclass
class Message:
    """One message id as the code uses it: its plural id (if any) and where it appears."""

    id: str
    plural: str | None = None
    locations: list[tuple[str, int]] = field(default_factory=list)


def sources() -> list[Path]:
    """The Python files of the app and the engine (tests and benchmarks show nothing to a person)."""
    files = [ROOT / "app.py"]
    for folder in ("pages", "ui", "cnndash"):
        files += sorted((ROOT / folder).rglob("*.py"))
    return [f for f in files if "template" not in f.relative_to(ROOT).parts]


def domain_of(path: Path) -> str:
    """The domain whose catalogue holds the messages of ``path`` (a file of :func:`sources`)."""
    rel = path.relative_to(ROOT).as_posix()
    for domain, prefixes in DOMAIN_SOURCES.items():
        if any(rel == p or (p.endswith("/") and rel.startswith(p)) for p in prefixes):
            return domain
    raise ValueError(f"{rel} is in no translation domain; add it to ui.catalogs.DOMAIN_SOURCES")


def error_domains() -> dict[str, str]:
    """Every :class:`~cnndash.errors.UserError` subclass in the engine → its translation domain (read from
    the source, so extraction needs no torch import)."""
    bases: dict[str, list[str]] = {}
    declared: dict[str, str] = {}
    for path in sorted((ROOT / "cnndash").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            bases[node.name] = [b.id for b in node.bases if isinstance(b, ast.Name)]
            for stmt in node.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and [getattr(t, "id", None) for t in stmt.targets] == ["domain"]
                    and isinstance(stmt.value, ast.Constant)
                ):
                    declared[node.name] = stmt.value.value

    def domain(name: str) -> str | None:
        if name == "UserError":
            return declared.get(name, "engine")
        for base in bases.get(name, []):
            if (found := domain(base)) is not None:
                return declared.get(name, found)
        return None

    return {name: found for name in bases if (found := domain(name)) is not None}


def extract_all() -> dict[str, dict[str, Message]]:
    """Domain → message id → :class:`Message`, for every message the code marks."""
    errors = {name: d for name, d in error_domains().items() if name not in NOT_YET_TEMPLATED}
    keywords = KEYWORDS | dict.fromkeys(errors)
    out: dict[str, dict[str, Message]] = {d: {} for d in DOMAINS}
    for path in sources():
        rel = path.relative_to(ROOT).as_posix()
        home = domain_of(path)
        with open(path, "rb") as handle:
            found = list(extract_python(handle, list(keywords), [], {"encoding": "utf-8"}))
        for lineno, funcname, args, _comments in found:
            ids = _message_ids(funcname, args)
            if ids is None:  # not a literal (a variable, an f-string): nothing to extract
                continue
            entry = out[errors.get(funcname, home)].setdefault(ids[0], Message(*ids))
            entry.locations.append((rel, lineno))
    return out


def _message_ids(funcname: str, args: str | tuple | None) -> tuple[str, str | None] | None:
    """The (singular, plural) ids of one marked call, as ``pybabel extract`` reads its keyword spec."""
    args = (args,) if isinstance(args, str) or args is None else tuple(args)
    if funcname == "plural":
        ok = len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str)
        return (args[0], args[1]) if ok else None
    return (args[0], None) if args and isinstance(args[0], str) and args[0] else None


def placeholders(text: str) -> set[str]:
    """The ``{fields}`` of a ``str.format`` template (``{{`` is a literal brace)."""
    try:
        return {
            name.split(".")[0].split("[")[0]
            for _lit, name, _spec, _conv in string.Formatter().parse(text)
            if name
        }
    except ValueError:
        return set()


def read_catalog(domain: str) -> Catalog:
    """The Chinese catalogue of ``domain`` (an empty one when its file does not exist yet)."""
    path = PO_DIR / f"{domain}.po"
    if not path.is_file():
        return Catalog(locale=LOCALE, domain=domain)
    with open(path, "rb") as handle:
        return read_po(handle, locale=LOCALE, domain=domain)


def update(domain: str, messages: dict[str, Message]) -> Catalog:
    """``domain``'s catalogue brought up to ``messages``, as ``pybabel update`` does, and written back."""
    template = Catalog(locale=None, domain=domain, project="cnndash")
    for msg in messages.values():
        template.add((msg.id, msg.plural) if msg.plural else msg.id, locations=msg.locations,
                     flags=("python-brace-format",) if placeholders(msg.id) else ())  # fmt: skip
    catalog = read_catalog(domain)
    catalog.update(template, no_fuzzy_matching=True)
    catalog.obsolete.clear()  # an id no code uses is dropped, not kept commented out
    catalog.fuzzy = False
    catalog.project, catalog.version, catalog.language_team = "cnndash", "1", "cnndash <zh-CN>"
    catalog.header_comment = HEADER
    written = io.BytesIO()
    # File names without line numbers: a line moving is not a change to review or a merge conflict.
    write_po(written, catalog, width=100, sort_output=False, omit_header=False, include_previous=False,
             include_lineno=False)  # fmt: skip
    path = PO_DIR / f"{domain}.po"
    if not path.is_file() or _undated(path.read_bytes()) != _undated(written.getvalue()):
        # Written only when a message changed: the dates alone would make every run a diff (and a merge
        # conflict between two people translating different domains).
        PO_DIR.mkdir(parents=True, exist_ok=True)
        path.write_bytes(written.getvalue())
    return catalog


def _undated(po: bytes) -> bytes:
    return b"\n".join(line for line in po.splitlines() if b"-Date:" not in line)


def main() -> None:
    """``make i18n``: extract every domain and update its catalogue; print what is left to translate."""
    for domain, messages in extract_all().items():
        catalog = update(domain, messages)
        missing = sum(1 for m in catalog if m.id and not (all(m.string) if m.pluralizable else m.string))
        print(f"{domain:<11} {len(messages):>4} messages, {missing:>4} untranslated")


if __name__ == "__main__":
    main()
