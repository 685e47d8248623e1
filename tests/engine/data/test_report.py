"""The files an upload skipped, summarised by reason, the real problems first (data.report)."""

from __future__ import annotations

from cnndash import data
from cnndash.data.report import SkippedFile, group_skipped, short_reason, skip_kind, skipped_summary
from tests.fixtures import MESSY_CMYK, MESSY_TRANSPARENT, MESSY_TRUNCATED, messy_phone_zip


def test_a_messy_phone_export_is_summarised_problem_first(tmp_path):
    report = data.import_dataset_zip(messy_phone_zip(tmp_path / "phone.zip", junk=281), "phone")
    assert len(report.skipped) == 282
    groups = group_skipped(report.skipped)
    assert [(g.kind, g.problem, len(g.files)) for g in groups] == [
        ("unreadable", True, 1),
        ("system", False, 281),
    ]
    assert skipped_summary(report.skipped) == (
        f"1 unreadable image: {MESSY_TRUNCATED} (truncated); "
        "281 system files ignored (__MACOSX, .DS_Store and other hidden files)"
    )
    # The CMYK JPEG and the transparent PNG are images like the others: kept, not skipped.
    kept = {path.relative_to(report.root).as_posix() for path in report.root.rglob("*.*")}
    assert {MESSY_CMYK, MESSY_TRANSPARENT} <= kept
    assert report.modes.get("CMYK") == 1 and report.modes.get("RGBA") == 1


def test_every_reason_the_archive_gives_has_its_kind():
    skipped = [
        SkippedFile("__MACOSX/a/._1.jpg", "macOS metadata (__MACOSX)"),
        SkippedFile("a/.DS_Store", "hidden file"),
        SkippedFile("a/notes.txt", "not an image (.txt)"),
        SkippedFile("a/clip.mov", "not an image (.mov)"),
        SkippedFile("loose.jpg", "not inside a class folder"),
        SkippedFile(
            "a/big.png", "unreadable image: is a decompression bomb (…); images are limited to 64 megapixels"
        ),
        SkippedFile("a/x.jpg", "unreadable image: does not decode as an image: cannot identify image file."),
    ]
    assert [skip_kind(s.reason) for s in skipped] == [
        "system", "system", "not_image", "not_image", "outside", "unreadable", "unreadable"
    ]  # fmt: skip
    assert [short_reason(s.reason) for s in skipped[-2:]] == ["too large", "not an image"]
    lines = [group.describe() for group in group_skipped(skipped)]
    assert lines == [
        "2 unreadable images: a/big.png (too large), a/x.jpg (not an image)",
        "1 image outside every class folder: loose.jpg",
        "2 files that are not images ignored (.mov, .txt)",
        "2 system files ignored (__MACOSX, .DS_Store and other hidden files)",
    ]


def test_long_lists_are_cut_and_counted():
    skipped = [SkippedFile(f"c/{i}.jpg", "unreadable image: the file is truncated") for i in range(5)]
    (group,) = group_skipped(skipped)
    assert (
        group.describe(listed=2) == "5 unreadable images: c/0.jpg (truncated), c/1.jpg (truncated) and 3 more"
    )
    assert skipped_summary([]) == ""
