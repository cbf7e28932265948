"""``--data`` runs Python code only when asked with ``py:module:function``; a mistyped path never imports anything."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest

from edgeq.converters.datasets import load_samples
from edgeq.converters.source import InputSpec
from edgeq.errors import DataError

INPUTS = [InputSpec("x", (None, 4))]
MODULE = '''
from pathlib import Path
Path("IMPORTED").write_text("the module ran")

def samples():
    import numpy as np
    return [np.full(4, i, np.float32) for i in range(12)]

def boom():
    raise ZeroDivisionError("division by zero inside the user's function")

def boom_later():
    import numpy as np
    yield np.zeros(4, np.float32)
    raise KeyError("late")
'''


@pytest.fixture()
def workdir(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "userdata.py").write_text(MODULE)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(cwd)
        import sys

        sys.modules.pop("userdata", None)


def test_module_function_without_prefix_is_a_missing_path_and_runs_nothing(workdir: Path) -> None:
    with pytest.raises(DataError, match="py:userdata:samples"):
        load_samples("userdata:samples", INPUTS, samples=4)
    assert not (workdir / "IMPORTED").exists(), "a path-like --data value imported a module from the working folder"


def test_py_prefix_runs_the_function(workdir: Path) -> None:
    got = load_samples("py:userdata:samples", INPUTS, samples=8, seed=0)
    assert (workdir / "IMPORTED").exists()
    assert len(got.calibration) == 8
    values = {float(np.asarray(s[0] if isinstance(s, (list, tuple)) else s).reshape(-1)[0]) for s in got.calibration}
    assert values <= set(range(12)) and len(values) == 8


@pytest.mark.parametrize("func,raised", [("boom", "ZeroDivisionError"), ("boom_later", "KeyError"),
                                         ("missing", "has no attribute")])
def test_exceptions_inside_the_data_function_are_data_errors(workdir: Path, func: str, raised: str) -> None:
    with pytest.raises(DataError, match=raised):
        load_samples(f"py:userdata:{func}", INPUTS, samples=4)


def test_api_callable_exceptions_are_data_errors() -> None:
    def broken() -> list[np.ndarray]:
        raise RuntimeError("user bug")

    with pytest.raises(DataError, match="broken raised RuntimeError: user bug"):
        load_samples(broken, INPUTS, samples=4)
