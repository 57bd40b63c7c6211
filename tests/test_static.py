"""The static checks, run by the test command so that CI runs them: the whole repository is
ruff-formatted and ruff-clean (the rules are pyproject.toml's `[tool.ruff]`), and mypy finds
no error in the package (`[tool.mypy]`). Another check is one more line of `CHECKS`, its tool
in the test extra.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# name -> the command, run at the root of the repository; it passes when it exits 0
CHECKS: dict[str, list[str]] = {
    "ruff format": [sys.executable, "-m", "ruff", "format", "--check", "--diff", "."],
    "ruff check": [sys.executable, "-m", "ruff", "check", "--no-cache", "."],
    "mypy": [sys.executable, "-m", "mypy", "tui_flow"],
}


@pytest.mark.parametrize("name", list(CHECKS))
def test_static_check_passes(name: str) -> None:
    p = subprocess.run(CHECKS[name], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, f"{name} failed:\n{p.stdout}{p.stderr}"
