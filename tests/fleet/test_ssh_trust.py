"""SSH trust and bad arguments of ``--host``: known_hosts checks, refused keys, ``--identity``, usage errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from fleet.sshd_lab import REPO_MODEL, Lab


@pytest.fixture
def fresh_home(lab: Lab, tmp_path: Path) -> dict[str, str]:
    """A client HOME with the user key and ssh config but an empty known_hosts."""
    home = tmp_path / "home"
    shutil.copytree(lab.home, home)
    (home / ".ssh" / "known_hosts").write_text("")
    return {**lab.env, "HOME": str(home)}


def _run(lab: Lab, env: dict[str, str], *args: str) -> tuple[int, str]:
    proc = lab.run(*args, env=env)
    return proc.returncode, proc.stderr


def test_unknown_host_key_is_refused_without_accept_new(lab: Lab, fresh_home: dict[str, str]) -> None:
    code, err = _run(lab, fresh_home, "devices", "--host", "good1")
    assert code == 1
    assert "FAILED good1: host key not trusted by" in err and "--accept-new-host-keys" in err
    assert (Path(fresh_home["HOME"]) / ".ssh" / "known_hosts").read_text() == ""


def test_accept_new_records_the_key_then_verifies_it(lab: Lab, fresh_home: dict[str, str]) -> None:
    port = lab.boards["good1"].port
    code, err = _run(lab, fresh_home, "devices", "--host", "good1", "--accept-new-host-keys")
    assert code == 0, err
    recorded = (Path(fresh_home["HOME"]) / ".ssh" / "known_hosts").read_text().split()
    assert recorded[0] == f"[127.0.0.1]:{port}" and recorded[1] == "ssh-ed25519"
    host_key = (lab.boards["good1"].tmp.parent / "host_key.pub").read_text().split()
    assert recorded[1:3] == host_key[:2]
    code, err = _run(lab, fresh_home, "devices", "--host", "good1")  # now known: no flag needed
    assert code == 0, err


def test_a_changed_host_key_is_refused_even_with_accept_new(lab: Lab, fresh_home: dict[str, str]) -> None:
    port = lab.boards["good1"].port
    other = (lab.boards["good2"].tmp.parent / "host_key.pub").read_text().split()
    (Path(fresh_home["HOME"]) / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {other[0]} {other[1]}\n")
    code, err = _run(lab, fresh_home, "devices", "--host", "good1", "--accept-new-host-keys")
    assert code == 1
    assert "FAILED good1: host key not trusted" in err and "changed" in err


def test_refused_key_fails_that_board_only(lab: Lab) -> None:
    code, err = _run(lab, lab.env, "devices", "--host", "refuses", "--host", "good2")
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert failed == ["FAILED refuses: permission denied: the board refused the SSH key(s) offered "
                      "(check --identity, ssh-agent, authorized_keys)"]
    assert "1 of 2 board(s) answered; 1 failed" in err


def test_a_board_that_does_not_answer_fails_alone(lab: Lab) -> None:
    from fleet.sshd_lab import _free_port

    closed = f"pi@127.0.0.1:{_free_port()}"
    proc = lab.run("devices", "--host", closed, "--host", "good1", "--json")
    assert proc.returncode == 1
    hosts = json.loads(proc.stdout)["hosts"]
    assert [(h["host"], h["ok"]) for h in hosts] == [(closed, False), ("good1", True)]
    assert hosts[0]["error"].startswith("cannot connect: Connect call failed")
    assert f"FAILED {closed}: cannot connect" in proc.stderr


def test_identity_offers_the_key_the_board_accepts(lab: Lab) -> None:
    other = lab.boards["refuses"].tmp.parent.parent / "other_key"
    code, err = _run(lab, lab.env, "devices", "--host", "refuses", "--identity", str(other))
    assert code == 0, err


def test_hosts_file_inventory(lab: Lab, tmp_path: Path) -> None:
    inventory = tmp_path / "lab.ini"
    inventory.write_text(
        "[pis]\n"
        f"pi4 ansible_host=127.0.0.1 ansible_port={lab.boards['good1'].port}\n"
        f"pi5 ansible_host=127.0.0.1 ansible_port={lab.boards['bare'].port}\n"
        "[pis:vars]\n"
        f"ansible_user={lab.boards['good1'].spec.split('@')[0]}\n"
    )
    proc = lab.run("devices", "--hosts", str(inventory), "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [d["host"] for d in doc["devices"]] == ["pi4"]
    assert doc["devices"][0]["device"]["arch"]
    assert [(h["host"], h["ok"]) for h in doc["hosts"]] == [("pi4", True), ("pi5", False)]


def test_broken_remote_edgeq_reports_its_error(lab: Lab, tmp_path: Path) -> None:
    broken = tmp_path / "broken-edgeq"
    broken.write_text('#!/bin/sh\n[ "$1" = --version ] && { echo "edgeq 0.0.0"; exit 0; }\n'
                      'echo "Traceback (most recent call last):" >&2\n'
                      'echo "ImportError: libedgetpu.so.1: cannot open shared object file" >&2\nexit 1\n')
    broken.chmod(0o755)
    proc = lab.run("profile", str(REPO_MODEL), "--host", "good1", "--remote-edgeq", str(broken))
    assert proc.returncode == 1
    assert (f"FAILED good1: remote 'edgeq profile {REPO_MODEL} --json' failed: ImportError: libedgetpu.so.1: "
            "cannot open shared object file") in proc.stderr
    assert not lab.boards["good1"].leftovers()


def test_the_ssh_agent_holds_the_key(lab: Lab, tmp_path: Path) -> None:
    home = tmp_path / "home"
    shutil.copytree(lab.home, home)
    key = tmp_path / "agent_key"
    shutil.move(home / ".ssh" / "id_ed25519", key)  # the only copy of the user key is now in the agent
    (home / ".ssh" / "id_ed25519.pub").unlink()
    env = {**lab.env, "HOME": str(home)}
    code, err = _run(lab, env, "devices", "--host", "good1")
    assert code == 1 and "FAILED good1: permission denied" in err
    sock = tmp_path / "agent.sock"
    agent = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if sock.exists():
                break
            time.sleep(0.05)
        subprocess.run(["ssh-add", "-q", str(key)], env={**env, "SSH_AUTH_SOCK": str(sock)}, check=True,
                       capture_output=True)
        code, err = _run(lab, {**env, "SSH_AUTH_SOCK": str(sock)}, "devices", "--host", "good1")
        assert code == 0, err
    finally:
        agent.terminate()
        agent.wait(timeout=10)
