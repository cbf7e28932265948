"""``edgeq devices`` and ``edgeq doctor`` run in-process through ``edgeq.cli.main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgeq.cli import main
from edgeq.devices import known_profiles

FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_devices_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"device", "live", "profile"}
    assert data["device"]["profile"] == data["profile"]["key"]
    assert data["device"]["recommended_threads"] >= 1
    assert set(data["live"]) >= {"temperature_c", "freq_cur_mhz", "governor", "throttled"}


def test_devices_json_on_a_recorded_pi5(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--json", "--root", str(FIXTURES / "rpi5")]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["device"]["board"], data["device"]["cpu_part"], data["profile"]["key"]) == (
        "Raspberry Pi 5 Model B Rev 1.0", "Cortex-A76", "rpi5")
    assert data["live"]["freq_max_mhz"] == 2400
    assert data["profile"]["preferred_mode"]["mode"] == "int8"


def test_devices_table_on_a_recorded_pi4(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--root", str(FIXTURES / "rpi4b")]) == 0
    out = capsys.readouterr().out
    for text in ("Raspberry Pi 4 Model B Rev 1.4", "Cortex-A72", "c03114: 4B rev 1.4, 4096 MB, BCM2711", "61.8 C",
                 "Profile rpi4", "float16", "poor", "caveat"):
        assert text in out


def test_devices_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(p.key in out for p in known_profiles())


def test_devices_list_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["devices", "--list", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [p["key"] for p in data] == [p.key for p in known_profiles()]


def test_devices_bad_root_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["devices", "--root", str(tmp_path / "missing")]) == 2
    assert "UsageError: --root must be a folder" in capsys.readouterr().err


def test_doctor_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["doctor", "--json"])
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    names = [c["name"] for c in data["checks"]]
    assert names == ["backend", "numpy", "xnnpack", "os", "camera", "opencv", "convert", "memory", "throttling"]
    assert all(c["status"] in ("ok", "warn", "fail") for c in data["checks"])
    assert code == (1 if data["counts"]["fail"] else 0)
    assert ("check(s) failed" in captured.err) is bool(code)


def test_doctor_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--json"]) in (0, 1)
    checks = json.loads(capsys.readouterr().out)["checks"]
    code = main(["doctor"])
    captured = capsys.readouterr()
    failed = [c["name"] for c in checks if c["status"] == "fail"]
    assert code == (1 if failed else 0), f"exit {code} with failed checks {failed}"
    assert ("check(s) failed" in captured.err) is bool(failed)
    assert "edgeq doctor on" in captured.out
    for check in checks:  # every check is a row of the table
        assert check["name"] in captured.out


def test_help_has_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("devices", "doctor"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert f"edgeq {command} --json" in capsys.readouterr().out
