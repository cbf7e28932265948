"""``edgeq compare`` in-process: the table, PNG and HTML outputs, and reports it must refuse."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from edgeq.cli import main


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two real reports of a one-op model (1 and 2 threads, then 1 thread), made without TensorFlow."""
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model
    from edgeq.runtime.profile import profile

    root = tmp_path_factory.mktemp("reports")
    model = root / "add.tflite"
    model.write_bytes(trivial_model())
    first = profile(model, threads=[1, 2], runs=30, warmup=2, memory=True)
    second = profile(model.read_bytes(), threads=[1], runs=30, warmup=2, memory=False)
    paths = [root / "a.json", root / "b.json"]
    for path, rep in zip(paths, (first, second)):
        path.write_bytes(rep.to_json())
    return paths


def test_compare_table_with_ratios(reports: list[Path], capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    assert main(["compare", *map(str, reports), "--baseline", "2"]) == 0
    out = capsys.readouterr().out
    assert "edgeq compare" in out and "p50 ms" in out and "FPS" in out
    assert "2*" in out and "base" in out and "×" in out
    rows = [line for line in out.splitlines() if " thr " in line]  # the second line of each entry: model, ratios
    assert [re.search(r"│ (\S[^│]*? thr)", row).group(1) for row in rows] == [
        "add.tflite · float32 · 1 thr", "add.tflite · float32 · 2 thr", "model bytes · float32 · 1 thr"]
    lines = out.splitlines()
    ratios = [lines[lines.index(row) + 1] for row in rows]  # each entry's ratios stand on the line under its values
    assert ratios[1].count("base") == 5  # the baseline's own ratios
    assert ratios[0].rstrip(" │").endswith("1.00×") and ratios[2].rstrip(" │").endswith("1.00×")  # same file: size 1


def test_compare_json(reports: list[Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", *map(str, reports), "--json", "--threads", "1"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [e["threads"] for e in data["entries"]] == [1, 1]
    assert data["entries"][0]["ratios"]["p50_ms"] == 1.0
    assert data["entries"][1]["metrics"]["peak_rss_delta_bytes"] is None  # the second report skipped memory
    assert any("same file" in n for n in data["notes"])  # same sha256 under two names


def test_compare_writes_png_and_html(reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from PIL import Image

    png, page = tmp_path / "cmp.png", tmp_path / "cmp.html"
    assert main(["compare", *map(str, reports), "--png", str(png), "--html", str(page)]) == 0
    with Image.open(png) as img:
        img.load()
        assert img.format == "PNG" and img.width >= 800 and img.height > 100
        colours = img.convert("RGB").getcolors(maxcolors=1 << 16)
        assert colours is not None and len(colours) > 5  # bars and text were drawn, not a blank canvas
    html = page.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and '<table id="comparison">' in html
    assert html.count("<tr") == 1 + 3  # header + (2 thread counts + 1)
    assert "<svg" in html and "add.tflite" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in html
    # existing outputs are kept unless --force
    assert main(["compare", *map(str, reports), "--png", str(png)]) == 2
    assert "exists; pass --force" in " ".join(capsys.readouterr().err.split())
    assert main(["compare", *map(str, reports), "--png", str(png), "--force"]) == 0


def test_compare_refuses_other_schema_versions(reports: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    data = json.loads(reports[0].read_text())
    data["schema_version"] = 99
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(data))
    assert main(["compare", str(reports[0]), str(newer)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("DataError:") and "schema_version 99, but this edgeq reads version 1" in err


def test_compare_refuses_non_json(tmp_path: Path, reports: list[Path], capsys: pytest.CaptureFixture) -> None:
    junk = tmp_path / "junk.json"
    junk.write_bytes(b"\x89PNG not json")
    assert main(["compare", str(reports[0]), str(junk)]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err.startswith("DataError:") and f"{junk} is not JSON" in err
    assert main(["compare", str(tmp_path / "missing.json")]) == 2
    assert "report file not found" in " ".join(capsys.readouterr().err.split())


def test_compare_bad_baseline(reports: list[Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(reports[1]), "--baseline", "5"]) == 2
    assert "UsageError: --baseline must be between 1 and 1" in " ".join(capsys.readouterr().err.split())
    assert main(["compare", str(reports[1]), "--baseline", "0"]) == 2
    assert "UsageError" in capsys.readouterr().err
