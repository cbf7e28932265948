"""``edgeq run … --host`` and ``edgeq devices --host`` against real local sshd servers (see sshd_lab.py)."""

from __future__ import annotations

import json

from fleet.sshd_lab import REPO_MODEL, Lab

EVAL = REPO_MODEL.parent / "eval"


def test_run_on_boards_matches_a_local_run(lab: Lab) -> None:
    image, folder = EVAL / "0_tshirt_top" / "00019.png", EVAL / "1_trouser"
    local = lab.run("run", str(REPO_MODEL), str(image), str(folder), "--top", "2", "--json")
    assert local.returncode == 0, local.stderr
    expected = [json.loads(line) for line in local.stdout.splitlines()]
    proc = lab.run("run", str(REPO_MODEL), str(image), str(folder), "--top", "2", "--json",
                   "--host", "good1", "--host", "bare", "--host", lab.boards["good2"].spec)
    assert proc.returncode == 1
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["host"] for r in records] == ["good1"] * len(expected) + [lab.boards["good2"].spec] * len(expected)
    for got, want in zip(records, expected + expected):
        assert got["input"] == want["input"]  # the paths given here, not the board's temporary copies
        assert got["outputs"] == want["outputs"] and len(got["top"]) == 2  # same int8 model, same kernels
    assert "FAILED bare: edgeq not found" in proc.stderr
    assert not any(board.leftovers() for board in lab.boards.values())
    table = lab.run("run", str(REPO_MODEL), str(image), "--host", "good1", "--host", "good2")
    assert table.returncode == 0, table.stderr
    rows = [line for line in table.stdout.splitlines() if str(image) in line]
    assert len(rows) == 2 and "good1" in rows[0] and "good2" in rows[1]
    assert all(expected[0]["top"][0]["label"] in row for row in rows)


def test_devices_on_boards(lab: Lab) -> None:
    local = json.loads(lab.run("devices", "--json").stdout)
    proc = lab.run("devices", "--host", "good1", "--host", "good2", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [d["host"] for d in doc["devices"]] == ["good1", "good2"]
    for d in doc["devices"]:
        assert d["device"]["arch"] == local["device"]["arch"]
        assert d["profile"]["key"] == local["profile"]["key"]
    table = lab.run("devices", "--host", "good1", "--host", "bare")
    assert table.returncode == 1
    row = next(line for line in table.stdout.splitlines() if "good1" in line)
    assert local["device"]["arch"] in row and local["profile"]["preferred_mode"]["mode"] in row
    assert "bare" not in table.stdout and "FAILED bare:" in table.stderr
