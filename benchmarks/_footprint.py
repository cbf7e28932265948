"""Install footprint: a venv with ``pip install edgeq`` (no TensorFlow) against ``edgeq[convert]``.

The edgeq wheel is built from this tree (``pip wheel --no-deps --no-build-isolation``); each venv is
made with ``python -m venv`` and ``pip install <wheel>`` / ``pip install "<wheel>[convert]"``, and is
kept in the cache folder for later runs (the result says ``cached``). Sizes are ``du -sk``.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

from _common import REPO, run_process


def _du_kib(path: Path) -> int:
    done = run_process(["du", "-sk", str(path)], timeout=300)
    return int(done.stdout.split()[0]) if done.returncode == 0 and done.stdout else 0


def _site_packages(env_dir: Path) -> Path:
    (site,) = env_dir.glob("lib/python*/site-packages")
    return site


def build_wheel(cache: Path) -> Path:
    """The edgeq wheel of this tree (rebuilt every run: it takes seconds)."""
    dist = cache / "wheel"
    shutil.rmtree(dist, ignore_errors=True)
    done = run_process([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                        str(dist), str(REPO)], timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"pip wheel failed: {done.stderr.strip()[-400:]}")
    (wheel,) = dist.glob("edgeq-*.whl")
    return wheel


def _venv(env_dir: Path, requirement: str) -> dict[str, Any]:
    marker = env_dir / "edgeq-bench.json"
    if marker.exists() and json.loads(marker.read_text()).get("requirement") == requirement:
        cached = True
    else:
        cached = False
        done = run_process([sys.executable, "-m", "venv", "--clear", str(env_dir)], timeout=300)
        if done.returncode == 0:
            done = run_process([str(env_dir / "bin" / "python"), "-m", "pip", "install", "-q", requirement], timeout=1800)
        if done.returncode != 0:
            return {"error": (done.stderr.strip().splitlines() or ["?"])[-1][:300]}
        marker.write_text(json.dumps({"requirement": requirement}))
    site = _site_packages(env_dir)
    tops = sorted(((p.name, _du_kib(p)) for p in site.iterdir() if p.is_dir() and not p.name.endswith(".dist-info")),
                  key=lambda item: -item[1])
    return {"cached": cached, "venv_mib": _du_kib(env_dir) / 1024, "site_packages_mib": _du_kib(site) / 1024,
            "largest": [{"package": name, "mib": kib / 1024} for name, kib in tops[:6]]}


def footprint(cache: Path) -> dict[str, Any]:
    wheel = build_wheel(cache)
    # the wheel is rebuilt at the same path every run, so an existing venv is reused (sizes barely move)
    base = _venv(cache / "venv-edgeq", str(wheel))
    convert = _venv(cache / "venv-edgeq-convert", f"{wheel}[convert]")
    out: dict[str, Any] = {"wheel": wheel.name, "wheel_kib": wheel.stat().st_size / 1024, "edgeq": base,
                           "edgeq[convert]": convert}
    if "error" not in base and "error" not in convert:
        out["convert_over_base"] = convert["site_packages_mib"] / base["site_packages_mib"]
    return out
