"""``edgeq profile MODEL --host …`` against real local sshd servers (see conftest.py)."""

from __future__ import annotations

import getpass
import hashlib
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from fleet.sshd_lab import REPO_MODEL, VENV_BIN, Lab

QUICK = ("--runs", "5", "--warmup", "1", "--threads", "1", "--no-memory")


def test_two_good_boards_and_one_without_edgeq(lab: Lab) -> None:
    b = lab.boards
    proc = lab.run("profile", str(REPO_MODEL), *QUICK, "--host", b["good1"].spec, "--host", b["good2"].spec,
                   "--host", b["bare"].spec)
    assert proc.returncode == 1, proc.stderr
    # one table, one row per good board, each naming its host
    assert proc.stdout.count("edgeq compare") == 1
    assert b["good1"].spec in proc.stdout and b["good2"].spec in proc.stdout
    assert b["bare"].spec not in proc.stdout
    failures = [line for line in proc.stderr.splitlines() if line.startswith("FAILED")]
    assert failures == [f"FAILED {b['bare'].spec}: edgeq not found on the board (tried 'edgeq', 'python3 -m edgeq'): "
                        f"pip install edgeq on {b['bare'].spec}, or point --remote-edgeq at it"]
    assert "2 of 3 board(s) profiled; 1 failed" in proc.stderr
    assert all(not board.leftovers() for board in b.values())


def test_good_boards_only_exit_0_and_reports_merge_in_compare(lab: Lab, tmp_path: Path) -> None:
    b = lab.boards
    out = tmp_path / "reports"
    image = REPO_MODEL.parent / "eval" / "1_trouser" / "00002.png"  # a local --input travels with the model
    proc = lab.run("profile", str(REPO_MODEL), *QUICK, "--input", str(image), "--host", b["good1"].spec, "--host", "good2",
                   "--json-out", str(out), "--html", str(tmp_path / "cmp.html"))
    assert proc.returncode == 0, proc.stderr
    assert "FAILED" not in proc.stderr and "2 of 2 board(s) profiled" in proc.stderr
    files = sorted(p.name for p in out.iterdir())
    assert files == sorted([f"{getpass.getuser()}_127.0.0.1_{b['good1'].port}.json", "good2.json"])
    reports = {json.loads(p.read_text())["host"]: json.loads(p.read_text()) for p in out.iterdir()}
    assert set(reports) == {b["good1"].spec, "good2"}
    for report in reports.values():  # the remote edgeq measured with the options given here
        assert report["model"]["name"] == REPO_MODEL.name
        assert report["model"]["size_bytes"] == REPO_MODEL.stat().st_size
        assert [r["threads"] for r in report["results"]] == [1] and report["results"][0]["latency"]["runs"] == 5
        assert report["settings"]["memory"] is False and report["settings"]["input"] == image.name
    html = (tmp_path / "cmp.html").read_text()
    assert b["good1"].spec in html and "good2" in html
    # edgeq compare merges any number of reports, hosts on every row
    local = tmp_path / "local.json"
    assert lab.run("profile", str(REPO_MODEL), *QUICK, "--json-out", str(local)).returncode == 0
    merged = lab.run("compare", str(local), *(str(p) for p in sorted(out.iterdir())), "--json")
    assert merged.returncode == 0, merged.stderr
    entries = json.loads(merged.stdout)["entries"]
    assert [e["host"] for e in entries] == [None, "good2", b["good1"].spec]
    table = lab.run("compare", *(str(p) for p in sorted(out.iterdir())))
    rows = [line for line in table.stdout.splitlines() if "·" in line and "thr" not in line]
    assert len(rows) == 2 and any("good2 ·" in r for r in rows) and any(f"{b['good1'].spec} ·" in r for r in rows)


def test_json_on_stdout_lists_reports_and_failures(lab: Lab) -> None:
    b = lab.boards
    proc = lab.run("profile", str(REPO_MODEL), *QUICK, "--host", "good1", "--host", "bare", "--json")
    assert proc.returncode == 1
    doc = json.loads(proc.stdout)
    assert [r["host"] for r in doc["reports"]] == ["good1"]
    assert [(h["host"], h["ok"]) for h in doc["hosts"]] == [("good1", True), ("bare", False)]
    assert "pip install edgeq on bare" in doc["hosts"][1]["error"]
    assert "pip install edgeq on bare" in proc.stderr
    assert not b["good1"].leftovers()


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture(scope="module")
def slow_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ADD of two 2M-element tensors: ~1 ms a run, so ``--duration 60`` outlasts its 100,000-run cap's minute."""
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model

    path = tmp_path_factory.mktemp("slow") / "slow_add.tflite"
    path.write_bytes(trivial_model(size=2_000_000))
    return path


@pytest.mark.parametrize("signum, status, word", [(signal.SIGINT, 130, "Interrupted"), (signal.SIGTERM, 143, "Terminated")])
def test_ctrl_c_stops_the_boards_and_leaves_no_temporary_folder(lab: Lab, slow_model: Path, signum: int, status: int,
                                                               word: str) -> None:
    b = lab.boards
    cmd = [str(VENV_BIN / "edgeq"), "profile", str(slow_model), "--duration", "60", "--threads", "1", "--no-memory",
           "--host", "good1", "--host", "good2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=lab.env)
    try:
        pids: list[int] = []
        deadline = time.monotonic() + 60
        while len(pids) < 2 and time.monotonic() < deadline:  # both remote edgeqs are running
            time.sleep(0.1)
            pids = [int(p.read_text()) for board in (b["good1"], b["good2"]) for p in board.tmp.glob("*/.pid")
                    if p.read_text().strip()]
        assert len(pids) == 2, "the remote edgeq did not start"
        assert all(_alive(pid) for pid in pids)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err
    assert word in err
    assert not b["good1"].leftovers() and not b["good2"].leftovers()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids), "a remote edgeq kept running"


def test_timeout_fails_that_board_and_cleans_it(lab: Lab, slow_model: Path) -> None:
    b = lab.boards
    proc = lab.run("profile", str(slow_model), "--duration", "60", "--threads", "1", "--no-memory",
                   "--host", "good1", "--timeout", "4")
    assert proc.returncode == 1
    assert "FAILED good1: timed out after 4 s (raise --timeout)" in proc.stderr
    assert not b["good1"].leftovers()


def test_the_board_reads_copies_in_its_temporary_folder(lab: Lab, tmp_path: Path) -> None:
    """The remote edgeq gets the board's copies (same bytes), not the paths of this machine."""
    log = tmp_path / "argv.log"
    spy = tmp_path / "spy-edgeq"
    spy.write_text(f'#!/bin/sh\nfor a in "$@"; do [ -f "$a" ] && sha256sum "$a" >> {log}; done\n'
                   f'echo "args $*" >> {log}\nexec {VENV_BIN / "edgeq"} "$@"\n')
    spy.chmod(0o755)
    image = REPO_MODEL.parent / "eval" / "1_trouser" / "00002.png"
    proc = lab.run("profile", str(REPO_MODEL), *QUICK, "--input", str(image), "--host", "good1",
                   "--remote-edgeq", str(spy))
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    copies = {Path(line.split()[1]).name: line.split()[0] for line in lines if not line.startswith("args")}
    assert copies == {REPO_MODEL.name: hashlib.sha256(REPO_MODEL.read_bytes()).hexdigest(),
                      image.name: hashlib.sha256(image.read_bytes()).hexdigest()}
    args = next(line for line in lines if line.startswith("args profile"))
    board_tmp = str(lab.boards["good1"].tmp)
    assert str(REPO_MODEL) not in args and str(image) not in args
    assert f"{board_tmp}/edgeq-fleet." in args and args.endswith(" --json") and "--runs 5" in args
    assert not lab.boards["good1"].leftovers()
