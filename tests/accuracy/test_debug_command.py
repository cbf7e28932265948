"""``edgeq debug`` ends with an ``edgeq convert`` command that, pasted as printed, converts the model that was
debugged (same data, sampling, preprocessing and calibration) with the suggested layers in float."""

from __future__ import annotations

import shlex

import pytest

from edgeq.cli import main
from edgeq.metadata import read_metadata

pytestmark = [pytest.mark.tf, pytest.mark.slow]


def test_the_printed_command_repeats_the_settings_and_runs(spike, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "400")  # one line per command, as a wide terminal shows it
    (tmp_path / "spike_int8.tflite").write_bytes(b"an earlier result")  # the command must not collide with it
    assert main(["debug", str(spike.keras), "--data", str(spike.calib), "--samples", "150", "--seed", "3",
                 "--normalize", "raw", "--top", "3"]) == 0
    text = capsys.readouterr().out
    run_line = next(line for line in text.splitlines() if line.startswith("Run: "))
    command = run_line.removeprefix("Run: ")
    assert command == (f"edgeq convert {spike.keras} --data {spike.calib} --samples 150 --seed 3 --normalize raw "
                       "--keep-float spiky --out spike_int8_2.tflite")
    argv = shlex.split(command)
    assert main(argv[1:]) == 0, capsys.readouterr().err
    meta = read_metadata(tmp_path / "spike_int8_2.tflite")
    assert meta.quant.keep_float == ("spiky",)
    assert meta.quant.calibration["samples"] == 150
    assert (tmp_path / "spike_int8.tflite").read_bytes() == b"an earlier result"
