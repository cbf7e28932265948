"""``edgeq compare`` verdicts and figures: FPS from the median, rows named by their report, and "slower"/"faster"
only beyond the runs' own noise (a bootstrap interval of the p50 ratio).

Reports are real profiles (a one-op model and the bundled int8 sample, no TensorFlow); variants are made by
transforming a real report's timings the way a noisier or slower run would change them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgeq.cli import main
from edgeq.runtime.report import compare, load_report, p50_ratio_interval
from support import SAMPLE_MODEL


@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model
    from edgeq.runtime.profile import profile

    root = tmp_path_factory.mktemp("verdicts")
    add = root / "add.tflite"
    add.write_bytes(trivial_model())
    paths = {}
    for name, model in (("add", add), ("sample", SAMPLE_MODEL)):
        paths[name] = root / f"{name}.json"
        paths[name].write_bytes(profile(model, threads=[1], runs=60, warmup=3, memory=False).to_json())
    return paths


def _variant(src: Path, dst: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """A copy of a real report with its timings (and the summary computed from them) changed by ``change``."""
    from edgeq.runtime.report import LatencyStats

    data = json.loads(src.read_text())
    result = data["results"][0]
    timings = change(np.asarray(result["timings_ms"], dtype=np.float64))
    result["timings_ms"] = [float(t) for t in timings]
    result["latency"] = LatencyStats.from_timings(timings).to_dict()
    dst.write_text(json.dumps(data))
    return dst


def test_a_report_compared_with_itself_gets_no_verdict(reports: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["compare", str(reports["sample"]), str(reports["sample"]), "--json"]) == 0
    base, again = json.loads(capsys.readouterr().out)["entries"]
    assert base["verdict"] is None and again["verdict"] == "same"
    assert again["ratios"]["p50_ms"] == 1.0
    lo, hi = again["p50_interval"]
    assert lo <= 1.0 <= hi


def test_a_clearly_slower_model_is_called_slower(reports: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    result = compare([reports["add"], reports["sample"]])
    add, sample = result.entries
    assert sample.ratios["p50_ms"] > 1.5  # a CNN against one ADD op
    assert sample.verdict == "slower" and sample.p50_interval[0] > 1
    assert compare([reports["sample"], reports["add"]]).entries[1].verdict == "faster"


def test_a_difference_inside_the_noise_is_not_a_verdict(reports: dict[str, Path], tmp_path: Path) -> None:
    """3 % slower on average but with run-to-run jitter of ±30 %: the interval spans 1, so no verdict."""
    # both runs get their own seeded jitter around the real median, so the machine's own noise cannot decide it
    rng = np.random.default_rng(5)
    base = _variant(reports["sample"], tmp_path / "base.json",
                    lambda t: np.median(t) * rng.uniform(0.7, 1.3, t.size))
    noisy = _variant(reports["sample"], tmp_path / "noisy.json",
                     lambda t: np.median(t) * 1.03 * rng.uniform(0.7, 1.3, t.size))
    entry = compare([base, noisy]).entries[1]
    assert entry.p50_interval[0] < 1 < entry.p50_interval[1], entry.p50_interval
    assert entry.verdict == "same"
    # a slow-down well beyond that jitter is a verdict
    slow = _variant(base, tmp_path / "slow.json", lambda t: t * 1.25)
    assert compare([base, slow]).entries[1].verdict == "slower"


def test_fps_comes_from_the_median(reports: dict[str, Path], tmp_path: Path) -> None:
    """10 % of runs 100x slower (a background job): the mean doubles many times over, the median barely moves."""
    def outliers(t: np.ndarray) -> np.ndarray:
        t = t.copy()
        t[:: 10] *= 100
        return t

    spiky = _variant(reports["sample"], tmp_path / "spiky.json", outliers)
    entry = compare([spiky]).entries[0]
    report = load_report(spiky)
    assert entry.metrics["fps"] == pytest.approx(1000 / report.results[0].latency.p50_ms, rel=1e-3)
    assert entry.metrics["fps"] > 3 * report.results[0].latency.fps  # the mean-based figure would be far lower


def test_rows_of_the_same_device_and_model_are_told_apart(reports: dict[str, Path], tmp_path: Path,
                                                          capsys: pytest.CaptureFixture, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    copy = tmp_path / "sample_again.json"
    copy.write_bytes(reports["sample"].read_bytes())
    assert main(["compare", str(reports["sample"]), str(copy)]) == 0
    out = capsys.readouterr().out
    assert "sample.json" in out and "sample_again.json" in out
    assert main(["compare", str(reports["sample"]), str(copy), "--json"]) == 0
    names = [e["name"] for e in json.loads(capsys.readouterr().out)["entries"]]
    assert names == ["sample.json", "sample_again.json"]


def test_the_interval_is_reproducible_and_narrows_with_more_runs() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(10, 1, 40)
    other = rng.normal(10, 1, 40)
    assert p50_ratio_interval(other, base) == p50_ratio_interval(other, base)
    wide = p50_ratio_interval(other, base)
    narrow = p50_ratio_interval(rng.normal(10, 1, 4000), rng.normal(10, 1, 4000))
    assert (narrow[1] - narrow[0]) < (wide[1] - wide[0]) / 3
    assert p50_ratio_interval([1.0, 2.0], base) is None  # too few runs to estimate the noise
