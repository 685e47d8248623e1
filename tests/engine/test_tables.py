"""CSV cells from uploads never become spreadsheet formulas (cnndash.tables)."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from cnndash.tables import safe_frame, spreadsheet_safe


def test_formula_starts_become_text_and_everything_else_is_unchanged():
    for hostile in ["=HYPERLINK(1)", "+1", "-cmd", "@SUM(A1)", "\t=1", "\r=1"]:
        assert spreadsheet_safe(hostile) == "'" + hostile
    for harmless in ["cat.png", "a=b", "", "1e-3"]:
        assert spreadsheet_safe(harmless) == harmless
    assert spreadsheet_safe(-0.5) == -0.5 and spreadsheet_safe(3) == 3


def test_a_frame_is_safe_in_cells_columns_and_index_and_numbers_stay_numbers():
    frame = pd.DataFrame({"path": ["=cmd.png", "ok.png"], "p": [-0.25, 0.75]}, index=["@x", "y"])
    frame.columns = ["path", "=p"]
    read = pd.read_csv(io.StringIO(safe_frame(frame).to_csv()), index_col=0)
    assert list(read.columns) == ["path", "'=p"]
    assert list(read.index) == ["'@x", "y"]
    assert list(read["path"]) == ["'=cmd.png", "ok.png"]
    assert list(read["'=p"]) == [-0.25, 0.75]
    assert list(frame["path"]) == ["=cmd.png", "ok.png"]  # the original is not changed


def test_a_column_added_to_a_csv_keeps_the_rest_and_is_safe():
    from cnndash.evaluate.predict_files import predictions_csv
    from cnndash.tables import add_column

    probs = np.array([[0.4, 0.6], [0.9, 0.1]])
    written = predictions_csv(["=cmd.png", "0007.png"], probs, ["circle", "@square"], 1)
    csv_text = add_column(written, "flag", ["low confidence", ""])
    assert csv_text.splitlines() == [
        "path,predicted,probability,flag",
        "'=cmd.png,'@square,0.600000,low confidence",  # formulas defused; numbers as written
        "0007.png,circle,0.900000,",
    ]
    with pytest.raises(ValueError):
        add_column(written, "flag", ["one"])
