import subprocess
import sys

from tests.conftest import ROOT


def test_help_lists_subcommands():
    result = subprocess.run(
        [sys.executable, "-m", "cnndash", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "train" in result.stdout
    assert "evaluate" in result.stdout
