"""``edgeq profile MODEL --host …`` against real local sshd servers (see conftest.py)."""

from __future__ import annotations

import json

from fleet.sshd_lab import REPO_MODEL, Lab

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
