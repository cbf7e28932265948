"""Long runs at CI size: the runtime and the camera app keep memory, objects and threads flat.

``benchmarks/soak.py`` in a fresh process (as a board would run it): 3,000 inferences after a warm-up,
rotating through every kind of input, and the camera app twice over a 300-frame generated video. The
full run (10,000 inferences, 2 x 3,000 frames) is ``python benchmarks/soak.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[2] / "benchmarks" / "soak.py"


def test_runtime_and_camera_stay_flat(tmp_path):
    pytest.importorskip("cv2", reason='the camera soak needs OpenCV (pip install "edgeq[camera]")')
    out = tmp_path / "soak.json"
    done = subprocess.run([sys.executable, str(SOAK), "--inferences", "3000", "--every", "250", "--frames", "300",
                           "--json", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["missed"] == []
    runtime, camera = report["sections"]["runtime"], report["sections"]["camera"]
    assert runtime["inferences"] == 3000 and len(runtime["samples"]) == 13
    assert runtime["rss_growth_bytes"] < 1 << 20 and runtime["objects_growth"] < 100
    assert runtime["threads_after"] == runtime["threads_before"]
    assert [r["frames"] for r in camera["runs"]] == [300, 300]
    assert camera["threads_leaked"] == 0 and camera["rss_growth_bytes"] < 1 << 20
