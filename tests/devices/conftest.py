"""Recorded /proc, /sys, /dev and /etc trees of real boards, written from their public documentation."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable

import pytest

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def board_root() -> Callable[[str], Path]:
    """``board_root("rpi4b")`` -> the recorded tree of that board."""

    def root(name: str) -> Path:
        path = FIXTURES / name
        assert path.is_dir(), f"no fixture tree {path}"
        return path

    return root
