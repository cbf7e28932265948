"""A full disk and a read-only output folder: one clean error (exit 2), nothing partial left behind.

The folders are real file systems: a 64 KiB tmpfs filled up to its last 2 KiB, and a tmpfs mounted
read-only (root ignores permission bits, so ``chmod`` would prove nothing). Each case runs the CLI in a child
process inside its own mount namespace, which mounts the tmpfs, runs ``edgeq``, lists the folder and exits,
so no mount is ever left on the machine. The namespace comes from ``unshare -m`` (root with CAP_SYS_ADMIN,
as CI runs) or else ``unshare -Urm`` (an unprivileged user namespace, where tmpfs mounts are allowed).
Where neither works the tests skip, saying why; with ``EDGEQ_REQUIRE_MOUNTS=1`` (set by ``.ci/run``) they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
LEFT_FREE = 2048

#: the child: mount the tmpfs, optionally fill it, run the CLI, write the folder's listing, exit with the CLI's code
CHILD = f"""
import os, subprocess, sys
mnt, options, fill, listing, *args = sys.argv[1:]
subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", mnt], check=True)
if fill == "fill":
    st = os.statvfs(mnt)
    with open(os.path.join(mnt, "filler"), "wb") as fh:
        fh.write(bytes(st.f_bavail * st.f_frsize - {LEFT_FREE}))
from edgeq.cli import main
code = main(args)
with open(listing, "w") as fh:
    fh.write(" ".join(sorted(os.listdir(mnt))))
sys.exit(code)
"""


@lru_cache(maxsize=1)
def _namespace() -> tuple[tuple[str, ...], str]:
    """The ``unshare`` prefix that lets a child mount a tmpfs, or ``()`` and why none does."""
    if shutil.which("unshare") is None:
        return (), "no unshare command (util-linux)"
    reasons = []
    for prefix in (("unshare", "-m", "--propagation", "private"), ("unshare", "-Urm", "--propagation", "private")):
        probe = subprocess.run([*prefix, "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"], capture_output=True,
                               text=True)
        if probe.returncode == 0:
            return prefix, ""
        reasons.append(f"{' '.join(prefix[:2])}: {probe.stderr.strip() or probe.returncode}")
    return (), "; ".join(reasons)


def run_on_tmpfs(tmp_path: Path, options: str, fill: bool, *args: str) -> tuple[int, list[str], list[str]]:
    """Run ``edgeq ARGS`` (``{mnt}`` in them is the tmpfs) in a private mount namespace.

    Returns:
        The exit code, the lines on stderr (``{mnt}`` for the tmpfs), and the tmpfs's file names after the run.
    """
    prefix, why = _namespace()
    if not prefix:
        message = f"cannot mount a tmpfs in a private mount namespace ({why}): the full-disk and read-only cases are not covered"
        if os.environ.get("EDGEQ_REQUIRE_MOUNTS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    mnt, listing = tmp_path / "mnt", tmp_path / "listing.txt"
    mnt.mkdir()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "COLUMNS": "200", "NO_COLOR": "1"}
    proc = subprocess.run([*prefix, sys.executable, "-c", CHILD, str(mnt), options, "fill" if fill else "-",
                           str(listing), *(a.replace("{mnt}", str(mnt)) for a in args)],
                          capture_output=True, text=True, timeout=300, env=env)
    lines = [ln.replace(str(mnt), "{mnt}") for ln in proc.stderr.splitlines()
             if ln.strip() and "XNNPACK delegate" not in ln]
    assert listing.exists() and not any("Traceback" in ln for ln in lines), proc.stderr
    assert not any(mnt.iterdir())  # the tmpfs lived only in the child's namespace
    return proc.returncode, lines, listing.read_text().split()


def one_line(lines: list[str]) -> str:
    assert len(lines) == 1, lines
    return lines[0]


def test_profile_report_on_a_full_disk(tmp_path):
    code, lines, files = run_on_tmpfs(tmp_path, "size=64k", True, "profile", str(SAMPLE_MODEL), "--runs", "3",
                                     "--threads", "1", "--no-memory", "--json-out", "{mnt}/report.json")
    assert code == 2
    assert one_line(lines) == "UsageError: cannot write {mnt}/report.json: No space left on device; check free space and permissions"
    assert files == ["filler"]


def test_profile_report_into_a_read_only_folder(tmp_path):
    code, lines, files = run_on_tmpfs(tmp_path, "size=64k,ro", False, "profile", str(SAMPLE_MODEL), "--runs", "3",
                                     "--json-out", "{mnt}/report.json")
    assert code == 2 and files == []
    assert one_line(lines) == ("UsageError: output folder {mnt} is not writable (read-only file system or permissions); "
                    "choose another --out")


def test_the_same_run_succeeds_with_room(tmp_path):
    """The control: with room left the same command writes the report, so the failures above are the disk's."""
    code, lines, files = run_on_tmpfs(tmp_path, "size=1m", False, "profile", str(SAMPLE_MODEL), "--runs", "3",
                                      "--threads", "1", "--no-memory", "--json-out", "{mnt}/report.json")
    assert code == 0 and files == ["report.json"], lines


@pytest.mark.tf
def test_convert_on_a_full_disk(tmp_path, keras_files, npy_data):
    code, lines, files = run_on_tmpfs(tmp_path, "size=64k", True, "convert", str(keras_files["keras"]), "--data",
                                     str(npy_data), "--samples", "10", "--out", "{mnt}/m.tflite")
    assert code == 2
    assert one_line(lines) == "UsageError: cannot write {mnt}/m.tflite: No space left on device; check free space and permissions"
    assert files == ["filler"]


@pytest.mark.tf
def test_convert_into_a_read_only_folder(tmp_path, keras_files, npy_data):
    code, lines, files = run_on_tmpfs(tmp_path, "size=64k,ro", False, "convert", str(keras_files["keras"]), "--data",
                                     str(npy_data), "--out", "{mnt}/m.tflite")
    assert code == 2 and files == []
    assert "is not writable (read-only file system or permissions)" in one_line(lines)
