"""The benchmark script still runs: ``benchmarks/run.py --quick`` end to end (~25 s).

Not a performance test: timings are not checked, only that every section produced its figures.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.tf
@pytest.mark.slow
def test_quick_benchmark_writes_the_table(tmp_path):
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--quick", "--out-dir", str(tmp_path / "out"),
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (json_file,) = (tmp_path / "out").glob("*-quick.json")
    (md_file,) = (tmp_path / "out").glob("*-quick.md")
    results = json.loads(json_file.read_text())

    pairs = {p["mode"]: p for p in results["conversion"]["pairs"]}
    assert set(pairs) == {"float32", "int8"}
    for p in pairs.values():
        assert p["bare"]["seconds"] > 0 and p["edgeq"]["without_verify_s"] > 0 and p["overhead"] is not None
    assert pairs["int8"]["edgeq"]["bytes"] < pairs["float32"]["edgeq"]["bytes"] / 2
    for threads in ("1", "2"):
        modes = results["latency"]["sample"][threads]["modes"]
        assert modes["float32"]["ratio_to_float32"] == 1.0 and modes["int8"]["p50_ms"] > 0
    assert results["accuracy"]["int8"]["accuracy"] > 0.8 and results["accuracy"]["int8"]["images"] == 1000
    assert {o["threads"] for o in results["overhead"]} == {1, 2}
    assert results["image_path"]["identical"] is True
    assert results["cold_start"]["seconds"]["import edgeq.runtime"] > 0 and not results["cold_start"]["errors"]
    assert {t["id"] for t in results["targets"]} >= {"convert-overhead", "predict-overhead-sample-1t", "image-path"}

    table = md_file.read_text()
    assert "## Targets" in table and "| `int8` |" in table
    assert table.strip() in done.stdout  # the same Markdown is printed
