"""``--host``/``--hosts`` parsing and bad arguments (no SSH server needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from edgeq._fleet import Host, gather_hosts, parse_host, read_hosts_file
from edgeq.cli import main
from edgeq.errors import UsageError


def test_host_specs() -> None:
    assert parse_host("pi@pi5.local:2222") == Host("pi@pi5.local:2222", "pi5.local", "pi", 2222)
    assert parse_host("jetson") == Host("jetson", "jetson", None, None)
    assert parse_host("pi@[fe80::1]:22") == Host("pi@[fe80::1]:22", "fe80::1", "pi", 22)
    for bad in ("pi@", "pi@host:0", "pi@host:65536", "pi@host:22x", "a b", "fe80::1"):
        with pytest.raises(UsageError, match="user@host"):
            parse_host(bad)


def test_plain_hosts_file(tmp_path: Path) -> None:
    path = tmp_path / "hosts.txt"
    path.write_text("# the lab\npi@pi4.local\n\npi@pi5.local:2222  \n; old\npi@pi4.local\n")
    hosts = gather_hosts(["pi@pi4.local", "nano"], [str(path)])
    assert [h.name for h in hosts] == ["pi@pi4.local", "nano", "pi@pi5.local:2222"]
    path.write_text("pi@pi4.local\nthis is not a host\n")
    with pytest.raises(UsageError, match=r"hosts.txt:2 expects user@host"):
        read_hosts_file(path)
    path.write_text("# nobody\n")
    with pytest.raises(UsageError, match="lists no host"):
        read_hosts_file(path)


def test_ansible_inventory(tmp_path: Path) -> None:
    path = tmp_path / "lab.ini"
    path.write_text(
        "[pis]\npi4 ansible_host=10.0.0.4 ansible_port=2222\npi5 ansible_host=10.0.0.5  # shelf 2\n"
        "[jetsons]\nnano ansible_host=10.0.0.9 ansible_user=jet\npi4\n"
        "[pis:vars]\nansible_user=pi\n[all:vars]\nansible_user=root\nansible_port=22\n[lab:children]\npis\njetsons\n"
    )
    assert read_hosts_file(path) == [
        Host("pi4", "10.0.0.4", "pi", 2222), Host("pi5", "10.0.0.5", "pi", 22), Host("nano", "10.0.0.9", "jet", 22),
    ]
    path.write_text("[pis]\npi4 ansible_port=ssh\n")
    with pytest.raises(UsageError, match="ansible_port of pi4 must be 1-65535"):
        read_hosts_file(path)


@pytest.mark.parametrize("args, message", [
    (["devices", "--host", "pi@pi4:99999"], "--host expects user@host[:port] (port 1-65535). Received: 'pi@pi4:99999'"),
    (["devices", "--host", "a", "--parallel", "0"], "--parallel must be at least 1. Received: --parallel 0"),
    (["devices", "--host", "a", "--timeout", "0"], "--timeout must be a positive number of seconds"),
    (["devices", "--host", "a", "--identity", "/nonexistent/key"], "--identity expects an SSH private key file"),
    (["devices", "--hosts", "/nonexistent/hosts.txt"], "--hosts expects a readable text file of hosts"),
    (["devices", "--host", "a", "--list"], "--list and --root describe this machine; leave them out with --host"),
    (["profile", "missing.tflite", "--host", "a"], "model file not found: missing.tflite"),
    (["run", "m.tflite", "--random", "--host", "a", "--save-outputs", "."], "--save-outputs writes on this machine"),
    (["run", "m.tflite", "nothere.jpg", "--host", "a"], "each INPUT must be a local file or folder to copy"),
])
def test_bad_arguments_exit_2_in_one_line(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_missing_asyncssh_names_the_extra(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "asyncssh", None)  # import asyncssh now raises ImportError
    assert main(["devices", "--host", "pi@pi4.local"]) == 2
    assert 'pip install "edgeq[fleet]"' in capsys.readouterr().err


def test_the_board_side_never_imports_the_fleet() -> None:
    """Building the CLI and importing the runtime and devices loads neither asyncssh nor edgeq._fleet (cold start)."""
    import subprocess

    code = ("import sys, edgeq.cli, edgeq.runtime, edgeq.devices; edgeq.cli.build_parser(); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'asyncssh' or m.startswith('edgeq._fleet')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60).stdout
    assert out.strip() == "[]"
