"""The wheel: built from the tree, installed into a fresh venv, run from outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repo(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(dist),
                    str(REPO)], check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("edgeq-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("edgeq/cli.py", "edgeq/converters/convert.py", "edgeq/runtime/model.py", "edgeq/devices/__init__.py",
                     "edgeq/_sample/model_int8.tflite", "edgeq/_sample/labels.txt", "edgeq/_fleet/remote.py"):
        assert expected in names, expected
    assert not any(n.startswith(("tests/", "converters/", "runtime/")) for n in names)

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=False)
    py = env_dir / "bin" / "python"
    # dependencies come from the test's own environment (no network); edgeq itself only from the wheel
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    Path(site, "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "-q", str(wheel)],
                   check=True, capture_output=True, timeout=300)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    where = subprocess.run([str(py), "-c", "import edgeq, edgeq.runtime; print(edgeq.runtime.__file__)"],
                           cwd=outside, capture_output=True, text=True, env=env, check=True).stdout
    assert str(env_dir) in where and str(REPO) not in where
    version = subprocess.run([str(env_dir / "bin" / "edgeq"), "--version"], cwd=outside, capture_output=True,
                             text=True, env=env, check=True).stdout
    assert version.startswith("edgeq ")
    demo = subprocess.run([str(env_dir / "bin" / "edgeq"), "demo", "--no-convert", "--json"], cwd=outside,
                          capture_output=True, text=True, env=env, timeout=300)
    assert demo.returncode == 0, demo.stderr
    assert '"int8_accuracy"' in demo.stdout
