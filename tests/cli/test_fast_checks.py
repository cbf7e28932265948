"""Mistakes are reported in about a second: every path and option is checked before TensorFlow is imported.

Each case runs the CLI in a child process with ``tensorflow``/``keras`` blocked (any import of them fails, and
the child exits 97 if one got imported anyway), so a check that came after the TensorFlow import would show as
the wrong message or exit 97. The child's CPU time (not its wall time, which a busy machine stretches at will) is
asserted well below what importing TensorFlow alone costs, so no other slow step (reading the data, loading the
model) comes before a check either.
Also: a Keras model given where a .tflite is expected, and an optional dependency that is installed but
fails to import.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, error_line, run_cli

SAMPLE = REPO / "samples" / "fashion_mnist"
KERAS = str(SAMPLE / "model.keras")
CALIB = str(SAMPLE / "calib")
#: importing TensorFlow costs 3-5 s of CPU; a check must answer well within that (the child's Python start included)
LIMIT_CPU_S = 1.5


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("checks")
    (root / "empty").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("no images here")
    (root / "empty_labels.txt").write_text("\n \n")
    (root / "exists.tflite").write_bytes(b"x")
    return {"empty": str(root / "empty"), "notes": str(root / "notes"), "labels": str(root / "empty_labels.txt"),
            "existing": str(root / "exists.tflite"), "root": str(root)}


CASES = {
    "missing model": (["convert", "nope.keras", "--data", CALIB, "--out", "{root}/o.tflite"],
                      "ModelError: model not found: nope.keras"),
    "tflite given to convert": (["convert", str(SAMPLE / "model_int8.tflite"), "--data", CALIB, "--out", "{root}/o.tflite"],
                                "is already a TFLite model"),
    "missing data": (["convert", KERAS, "--data", "nodata/", "--out", "{root}/o.tflite"], "DataError: --data not found: nodata/"),
    "empty data folder": (["convert", KERAS, "--data", "{empty}", "--out", "{root}/o.tflite"], "holds no images"),
    "folder without images": (["debug", KERAS, "--data", "{notes}"], "holds no images"),
    "bad normalize": (["convert", KERAS, "--data", CALIB, "--normalize", "-1,2", "--out", "{root}/o.tflite"],
                      "UsageError: --normalize expects one of"),
    "bad resize": (["convert", KERAS, "--data", CALIB, "--resize", "squash", "--out", "{root}/o.tflite"],
                   "UsageError: resize must be one of stretch, crop, pad"),
    "missing labels": (["convert", KERAS, "--data", CALIB, "--labels", "nolabels.txt", "--out", "{root}/o.tflite"],
                       "DataError: cannot read labels file nolabels.txt"),
    "empty labels": (["convert", KERAS, "--data", CALIB, "--labels", "{labels}", "--out", "{root}/o.tflite"],
                     "is empty; expected one class name per line"),
    "existing output": (["convert", KERAS, "--data", CALIB, "--out", "{existing}"], "exists; pass --force"),
    "missing output folder": (["convert", KERAS, "--data", CALIB, "--out", "{root}/no/o.tflite"], "does not exist"),
    "bad mode": (["convert", KERAS, "--data", CALIB, "--mode", "int7", "--out", "{root}/o.tflite"], "UsageError:"),
    "bad calibration": (["debug", KERAS, "--data", CALIB, "--calibration", "median"], "--calibration takes minmax"),
    "qat missing train": (["qat", KERAS, "--train", "notrain/", "--out", "{root}/o.tflite"], "labelled data not found: notrain/"),
    "eval missing data": (["eval", str(SAMPLE / "model_int8.tflite"), "--data", "noeval/"], "DataError: labelled data not found: noeval/"),
    "eval missing reference": (["eval", str(SAMPLE / "model_int8.tflite"), "--data", str(SAMPLE / "eval"),
                                "--reference", "nofloat.keras"], "--reference model not found"),
}


@pytest.mark.parametrize("case", CASES)
def test_mistakes_are_caught_before_tensorflow(case: str, files: dict[str, str]) -> None:
    argv, expected = CASES[case]
    argv = [a.format(**files) for a in argv]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = run_cli(*argv, block_tf=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the child has been waited for: its time is counted
    assert proc.returncode == 2, (proc.returncode, proc.stderr)  # 97 would mean TensorFlow was imported
    assert expected in error_line(proc)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    assert cpu < LIMIT_CPU_S, f"{case}: {cpu:.2f} s of CPU to report a mistake"


def test_the_checks_know_the_same_file_types_as_the_readers() -> None:
    from edgeq._commands import _checks
    from edgeq.converters.datasets import VIDEO_EXTENSIONS
    from edgeq.runtime.preprocess import IMAGE_EXTENSIONS

    assert _checks.IMAGE_SUFFIXES == IMAGE_EXTENSIONS and _checks.VIDEO_SUFFIXES == VIDEO_EXTENSIONS


@pytest.mark.parametrize("command", ["run", "inspect", "profile", "eval", "camera"])
def test_a_keras_model_where_tflite_is_expected(command: str) -> None:
    extra = {"run": ["photo.jpg"], "eval": ["--data", str(SAMPLE / "eval")]}.get(command, [])
    proc = run_cli(command, KERAS, *extra, block_tf=True)
    assert proc.returncode == 2
    assert error_line(proc) == (f"ModelError: {KERAS} is a Keras model, not TFLite: convert it first with edgeq convert "
                                f"{KERAS} --data CALIB_IMAGES/ --out model_int8.tflite")


def _broken_package(root: Path, name: str, error: str) -> dict[str, str]:
    """A package ``name`` on PYTHONPATH that is found but fails while importing, as a broken install does."""
    (root / name).mkdir(parents=True)
    (root / name / "__init__.py").write_text(f"raise {error}\n")
    return {**os.environ, "PYTHONPATH": str(root), "NO_COLOR": "1", "COLUMNS": "200"}


def test_an_installed_but_broken_tensorflow_shows_its_own_error(tmp_path: Path) -> None:
    env = _broken_package(tmp_path / "site", "tensorflow",
                          "ImportError('numpy.core._multiarray_umath failed to import\\nA module compiled with NumPy 1.x')")
    code = "import sys\nfrom edgeq.cli import main\nsys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", code, "convert", KERAS, "--data", CALIB, "--out", str(tmp_path / "o.tflite")],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    line = error_line(proc)
    assert line.startswith("DependencyMissing: tensorflow is installed but fails to import (ImportError: "
                           "numpy.core._multiarray_umath failed to import A module compiled with NumPy 1.x)")
    assert "not installed" not in line
    assert not (tmp_path / "o.tflite").exists()


def test_a_broken_opencv_shows_its_own_error_and_a_missing_one_says_not_installed(tmp_path: Path) -> None:
    env = _broken_package(tmp_path / "site", "cv2", "AttributeError(\"_ARRAY_API not found\")")
    code = "import sys\nfrom edgeq.cli import main\nsys.exit(main(sys.argv[1:]))"
    argv = ["camera", str(SAMPLE / "model_int8.tflite"), "--source", str(SAMPLE / "eval"), "--headless"]
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert error_line(proc).startswith("DependencyMissing: cv2 is installed but fails to import "
                                       "(AttributeError: _ARRAY_API not found)")
    blocked = "import sys\nsys.modules['cv2'] = None\nfrom edgeq.cli import main\nsys.exit(main(sys.argv[1:]))"
    proc = subprocess.run([sys.executable, "-c", blocked, *argv], capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2
    assert error_line(proc).startswith("DependencyMissing: cv2 is not installed")
