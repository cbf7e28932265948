"""Two real ``edgeq convert`` processes writing the same OUT at the same time: never a mixed file.

Without ``--force`` one wins and the other fails cleanly (exit 2, the existing-output message), whichever
of the two checks it hits (before the work, or the hard link at the end). With ``--force`` both succeed
and OUT is, whole, the model of one of them (told apart by the labels each embeds).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from edgeq._flatbuffer import parse
from edgeq.metadata import METADATA_NAME, ModelMetadata

pytestmark = pytest.mark.tf


def _start_pair(edgeq_child, keras: Path, data: Path, out: Path, work: Path, force: bool) -> list[subprocess.Popen]:
    procs = []
    for who in ("a", "b"):
        (work / who).mkdir(parents=True)
        labels = work / who / "labels.txt"
        labels.write_text("".join(f"{who}{i}\n" for i in range(4)))
        args = ["convert", str(keras), "--data", str(data), "--samples", "20", "--labels", str(labels),
                "--out", str(out), "--json"] + (["--force"] if force else [])
        procs.append(edgeq_child(args, work / who / "tmp"))
    return procs


def _finish(procs: list[subprocess.Popen]) -> list[tuple[int, str, str]]:
    """``(exit status, stdout, stderr)`` of each process."""
    done = [p.communicate(timeout=300) for p in procs]
    return [(p.returncode, out, err) for p, (out, err) in zip(procs, done)]


def _labels(path: Path) -> tuple[str, ...]:
    model = parse(path.read_bytes(), str(path))  # the whole structure checks out
    return ModelMetadata.from_json(model.metadata[METADATA_NAME], str(path)).labels


def test_same_out_without_and_with_force(edgeq_child, keras_files, npy_data, tmp_path):
    # both pairs run at once: four conversions racing on two files
    plain, forced = tmp_path / "plain", tmp_path / "forced"
    for folder in (plain, forced):
        folder.mkdir()
    pairs = {"plain": _start_pair(edgeq_child, keras_files["keras"], npy_data, plain / "m.tflite", tmp_path / "w1", False),
             "forced": _start_pair(edgeq_child, keras_files["keras"], npy_data, forced / "m.tflite", tmp_path / "w2", True)}
    results = {name: _finish(procs) for name, procs in pairs.items()}

    codes = sorted(code for code, _, _ in results["plain"])
    assert codes == [0, 2], results["plain"]
    loser = next(err for code, _, err in results["plain"] if code == 2)
    assert "UsageError: output" in loser and "exists; pass --force" in loser and "Traceback" not in loser, loser
    winner = next(json.loads(out) for code, out, _ in results["plain"] if code == 0)
    assert _labels(plain / "m.tflite") == tuple(winner["metadata"]["labels"])

    assert [code for code, _, _ in results["forced"]] == [0, 0], results["forced"]
    assert _labels(forced / "m.tflite") in (("a0", "a1", "a2", "a3"), ("b0", "b1", "b2", "b3"))
    sizes = {json.loads(out)["verification"]["size_after"] for _, out, _ in results["forced"]}
    assert (forced / "m.tflite").stat().st_size in sizes

    for folder in (plain, forced):  # no temporary files next to OUT
        assert sorted(p.name for p in folder.iterdir()) == ["m.tflite"]
    for tmp in tmp_path.glob("w*/*/tmp"):
        assert list(tmp.iterdir()) == [], tmp
