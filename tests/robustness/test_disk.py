"""A full disk and a read-only output folder: one clean error (exit 2), nothing partial left behind.

The folders are real file systems: a 64 KiB tmpfs filled up to its last 2 KiB, and a tmpfs mounted
read-only (root ignores permission bits, so ``chmod`` would prove nothing). Mounting needs root with
CAP_SYS_ADMIN; without it these tests skip, saying so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

from edgeq.cli import main

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
LEFT_FREE = 2048


def _mount(target: Path, options: str) -> None:
    target.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}): needs root with "
                    "CAP_SYS_ADMIN; the full-disk and read-only cases are not covered")


@pytest.fixture()
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs with ``LEFT_FREE`` bytes left (a ``filler`` file takes the rest)."""
    mnt = tmp_path / "full"
    _mount(mnt, "size=64k")
    try:
        stat = os.statvfs(mnt)
        (mnt / "filler").write_bytes(b"\0" * (stat.f_bavail * stat.f_frsize - LEFT_FREE))
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture()
def read_only(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "ro"
    _mount(mnt, "size=64k,ro")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def run(capsys, *args: str) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    code = main(list(args))
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip() and "XNNPACK delegate" not in ln]
    assert len(err) == 1 and "Traceback" not in err[0], err
    return code, err[0]


def test_profile_report_on_a_full_disk(capsys, full_disk):
    out = full_disk / "report.json"
    code, line = run(capsys, "profile", str(SAMPLE_MODEL), "--runs", "3", "--threads", "1", "--no-memory",
                     "--json-out", str(out))
    assert code == 2
    assert line == f"UsageError: cannot write {out}: No space left on device; check free space and permissions"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_profile_report_into_a_read_only_folder(capsys, read_only):
    code, line = run(capsys, "profile", str(SAMPLE_MODEL), "--runs", "3", "--json-out", str(read_only / "report.json"))
    assert code == 2
    assert line == (f"UsageError: output folder {read_only} is not writable (read-only file system or permissions); "
                    "choose another --out")


@pytest.mark.tf
def test_convert_on_a_full_disk(capsys, full_disk, keras_files, npy_data):
    out = full_disk / "m.tflite"
    code, line = run(capsys, "convert", str(keras_files["keras"]), "--data", str(npy_data), "--samples", "10",
                     "--out", str(out))
    assert code == 2
    assert line == f"UsageError: cannot write {out}: No space left on device; check free space and permissions"
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


@pytest.mark.tf
def test_convert_into_a_read_only_folder(capsys, read_only, keras_files, npy_data):
    code, line = run(capsys, "convert", str(keras_files["keras"]), "--data", str(npy_data), "--out",
                     str(read_only / "m.tflite"))
    assert code == 2 and "is not writable (read-only file system or permissions)" in line
