"""The ``edgeq compare --html`` page in a real browser: headless Chromium renders it to a screenshot, and the
chart (its verdict colours) and the table (its header band and text) must be visible and not blank.

Needs Debian's ``chromium`` (``.ci/run`` installs it when missing); skipped, with the reason, where it is absent.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgeq._render.compare import COLORS
from edgeq.cli import main
from support import SAMPLE_MODEL

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
#: the table header's background in the page's CSS
HEADER_BG = (0xF3, 0xF5, 0xF8)


def screenshot(page: Path, out: Path, tmp: Path) -> np.ndarray:
    """Render ``page`` at 1280x1000 with headless Chromium (no network, fresh profile); RGB pixels."""
    from PIL import Image

    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp / 'profile'}", "--hide-scrollbars", "--window-size=1280,1000"]
    proc = subprocess.run([CHROMIUM, *flags, f"--screenshot={out}", page.as_uri()], capture_output=True, text=True,
                          timeout=120)
    assert out.is_file(), proc.stderr[-2000:]
    with Image.open(out) as img:
        return np.asarray(img.convert("RGB"))


def _rows_with(pixels: np.ndarray, color: tuple[int, int, int], tolerance: int = 6) -> np.ndarray:
    """How many pixels of each screen row are within ``tolerance`` of ``color``."""
    return (np.abs(pixels.astype(int) - np.array(color)).max(axis=2) <= tolerance).sum(axis=1)


def _hex(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def test_the_page_shows_a_chart_and_a_table(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model
    from edgeq.runtime.profile import profile

    add = tmp_path / "add.tflite"
    add.write_bytes(trivial_model())
    reports = []
    for name, model in (("add", add), ("sample", SAMPLE_MODEL)):
        path = tmp_path / f"{name}.json"
        path.write_bytes(profile(model, threads=[1], runs=40, warmup=2, memory=False).to_json())
        reports.append(str(path))
    page = tmp_path / "compare.html"
    assert main(["compare", *reports, "--html", str(page), "--json"]) == 0
    verdicts = [e["verdict"] for e in json.loads(capsys.readouterr().out)["entries"]]
    assert verdicts == [None, "slower"]
    pixels = screenshot(page, tmp_path / "shot.png", tmp_path)
    assert pixels.shape[1] >= 1100
    # the chart: the baseline's dot in blue and the slower model's marks in red, both drawn
    blue_rows = _rows_with(pixels, _hex(COLORS["baseline"]))
    red_rows = _rows_with(pixels, _hex(COLORS["slower"]))
    assert blue_rows.max() >= 8 and red_rows.max() >= 8, "the chart's marks are not visible"
    chart_bottom = int(np.nonzero(blue_rows)[0].max())  # blue is only in the chart (the table's red is text)
    # the table below the chart: its header band, with dark text in and under it
    header = np.nonzero(_rows_with(pixels, HEADER_BG, tolerance=2) > 500)[0]
    assert header.size, "the table's header is not visible"
    assert header.min() > chart_bottom, "the table should follow the chart"
    below = pixels[header.min(): header.min() + 120]
    dark = (below.max(axis=2) < 90).sum()
    assert dark > 1000, "the table holds no visible text"
