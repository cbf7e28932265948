"""``edgeq profile`` in-process: tables, the report file, JSON on stdout, bad flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeq.cli import main
from edgeq.runtime.report import load_report

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@pytest.fixture()
def model(tmp_path: Path) -> Path:
    """A real one-op float32 model (ADD), built without TensorFlow."""
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model

    path = tmp_path / "add.tflite"
    path.write_bytes(trivial_model())
    return path


def test_profile_prints_tables_and_writes_the_report(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.json"
    code = main(["profile", str(model), "--runs", "7", "--warmup", "1", "--threads", "1,2", "--no-memory",
                 "--json-out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Steady-state latency (ms)" in captured.out and "Start-up and memory" in captured.out
    assert "litert" in captured.out or "tflite-runtime" in captured.out
    assert f"report written to {out}" in " ".join(captured.err.split())
    report = load_report(out)
    assert [r.threads for r in report.results] == [1, 2]
    assert all(r.latency.runs == 7 and r.warmup == 1 for r in report.results)
    assert report.settings["memory"] is False


def test_profile_json_to_stdout_is_only_json(model: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["profile", str(model), "--runs", "3", "--threads", "1", "--json"]) == 0
    out = capsys.readouterr().out
    data = json.loads(out)
    assert data["kind"] == "edgeq-profile" and data["results"][0]["latency"]["runs"] == 3
    assert data["results"][0]["memory"]["peak_rss_bytes"] > 0


def test_existing_report_needs_force(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "report.json"
    out.write_text("keep me")
    assert main(["profile", str(model), "--runs", "2", "--no-memory", "--json-out", str(out)]) == 2
    assert "exists; pass --force" in " ".join(capsys.readouterr().err.split())
    assert out.read_text() == "keep me"
    assert main(["profile", str(model), "--runs", "2", "--threads", "1", "--no-memory", "--json-out", str(out), "--force"]) == 0
    assert load_report(out).results[0].latency.runs == 2


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--threads", "0"], "UsageError: --threads takes positive counts"),
        (["--threads", "1,0"], "UsageError: --threads takes positive counts"),
        (["--runs", "0"], "UsageError: --runs must be at least 1"),
        (["--duration", "0"], "UsageError: --duration must be a positive"),
        (["--top", "0"], "UsageError: --top must be at least 1"),
        (["--warmup", "-1"], "UsageError: warmup must be"),
    ],
)
def test_bad_flags_exit_2_with_one_line(model: Path, flags: list[str], message: str, capsys: pytest.CaptureFixture) -> None:
    assert main(["profile", str(model), "--no-memory", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in " ".join(err.split())
    assert "Traceback" not in err


def test_runs_and_duration_are_exclusive(model: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["profile", str(model), "--runs", "5", "--duration", "1"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_model_that_fails_to_load(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["profile", str(tmp_path / "missing.tflite")]) == 2
    assert "ModelError: model file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"TFL3 but not really a model at all")
    assert main(["profile", str(bad), "--no-memory"]) == 2
    assert "ModelError:" in capsys.readouterr().err


def test_missing_input_file_is_a_data_error(model: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["profile", str(model), "--no-memory", "--input", str(tmp_path / "nope.png")]) == 2
    assert "DataError: --input" in capsys.readouterr().err


def test_help_has_examples(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        main(["profile", "--help"])
    out = capsys.readouterr().out
    assert "examples:" in out and "edgeq profile model_int8.tflite --ops" in out


@pytest.mark.skipif(not SAMPLE.exists(), reason="the Fashion-MNIST sample model is not built yet")
def test_profile_ops_on_the_sample(capsys: pytest.CaptureFixture) -> None:
    assert main(["profile", str(SAMPLE), "--runs", "20", "--threads", "1", "--no-memory", "--ops", "--ops-rounds", "5",
                 "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "Slowest ops (1 thread(s))" in out and "Time per op type" in out
    assert "sum of ops / whole model" in out and "CONV_2D" in out
    assert "int8 [metadata]" in out
