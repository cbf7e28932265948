"""Every ``.tflite`` of the third-party corpus that bare LiteRT runs, edgeq runs: inspect, run, predict, profile.

The corpus (tests/zoo/corpus.py): mediapipe 0.10.21 (``mediapipe/modules/**``: detectors, landmarks, sparse
``pose_detection``, custom-op ``face_landmark_with_attention``), openwakeword 0.5.1 (``resources/models``: the
dynamic-size ``melspectrogram``, wake words with IF subgraphs), basic-pitch 0.4.0 (``nmp.tflite``, 3 outputs).

For each model: ``inspect`` exits 0; ``run`` on a seeded input saves raw outputs equal bit for bit to bare
``ai_edge_litert``, and so does ``edgeq.load().predict``; ``profile --runs 20 --ops --json`` exits 0 with a per-op
table listing every operator of every subgraph. A model bare LiteRT cannot run gets one clear line and exit 2 from
``run`` and ``profile``. To keep the file within CI's budget, profiles use one thread, no memory child and 3
per-op rounds; everything runs on one thread so that the comparison with bare LiteRT is exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import edgeq
from edgeq import _checked
from edgeq._flatbuffer import _Lazy, parse
from edgeq.cli import main

pytestmark = [pytest.mark.zoo, pytest.mark.slow]

CORPUS = {
    "mediapipe": "mediapipe/modules/**/*.tflite",
    "openwakeword": "openwakeword/resources/models/*.tflite",
    "basic-pitch": "basic_pitch/saved_models/**/*.tflite",
}
#: the size given to a dynamic dimension beyond the batch (openwakeword's melspectrogram: 80 ms of 16 kHz audio)
DYNAMIC_SIZE = 1280


def seeded_input(path: Path, seed: int = 0) -> np.ndarray:
    """A seeded float input of the model's (single) input shape, dynamic sizes set to ``DYNAMIC_SIZE``."""
    from ai_edge_litert.interpreter import Interpreter

    (spec,) = Interpreter(model_path=str(path)).get_input_details()  # not allocated: custom ops do not matter
    shape = [1 if k == 0 and d == -1 else (DYNAMIC_SIZE if d == -1 else d) for k, d in enumerate(spec["shape_signature"])]
    return np.random.default_rng(seed).random(shape, dtype=np.float32).astype(spec["dtype"])


def bare_litert(path: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    """Outputs of bare LiteRT (one thread), by the names edgeq gives them (signature names when there is one)."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path), num_threads=1)
    signatures = it.get_signature_list()
    if signatures:
        runner = it.get_signature_runner(next(iter(signatures)))
        (name,) = runner.get_input_details()
        return {k: np.array(v) for k, v in runner(**{name: x}).items()}
    index = it.get_input_details()[0]["index"]
    it.resize_tensor_input(index, x.shape)
    it.allocate_tensors()
    it.set_tensor(index, x)
    it.invoke()
    return {d["name"]: np.array(it.get_tensor(d["index"])) for d in it.get_output_details()}


def litert_runs(path: Path, x: np.ndarray) -> str | None:
    """``None`` when bare LiteRT runs the model, else its first error line."""
    try:
        bare_litert(path, x)
    except (RuntimeError, ValueError) as exc:
        return str(exc).strip().splitlines()[0]
    return None


def check_model(path: Path, tmp: Path, capsys: pytest.CaptureFixture) -> dict[str, Any]:
    """All checks of one model; returns its row of the corpus table."""
    file = parse(path.read_bytes(), path.name)
    _checked.forget()  # as a new process: the proof's summary, not a check, gives the same model
    proven = parse(path.read_bytes(), path.name)
    assert isinstance(proven.subgraphs[0].tensors, _Lazy) and proven == file
    for again, full in zip(proven.subgraphs, file.subgraphs):
        assert tuple(again.tensors) == full.tensors and tuple(again.operators) == full.operators
    assert dict(proven.metadata) == dict(file.metadata) and tuple(proven.buffer_sizes) == file.buffer_sizes
    row: dict[str, Any] = {"model": path.name, "ops": sum(len(sg.operators) for sg in file.subgraphs)}
    assert main(["inspect", str(path)]) == 0, capsys.readouterr().err
    x = seeded_input(path)
    npy = tmp / f"{path.stem}.npy"
    np.save(npy, x)
    capsys.readouterr()
    refused = litert_runs(path, x)
    if refused is not None:  # LiteRT itself cannot run it: one clear line, exit 2, from run and profile
        for args in (["run", str(path), str(npy)], ["profile", str(path), "--runs", "3", "--no-memory"]):
            assert main(args) == 2
            lines = capsys.readouterr().err.strip().splitlines()
            assert len(lines) == 1 and "does not have" in lines[0], lines
        row.update(result=f"exit 2: {lines[0].rsplit(': ', 1)[-1]}", p50_ms=None)
        return row
    expected = bare_litert(path, x)
    outs = tmp / f"{path.stem}-outs"
    outs.mkdir()
    assert main(["run", str(path), str(npy), "--json", "--threads", "1", "--save-outputs", str(outs)]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert sorted(json.loads(line)["outputs"]) == sorted(expected)
    for name, value in expected.items():
        saved = np.load(outs / f"00000_{''.join(c if c.isalnum() or c in '-_' else '_' for c in name)}.npy")
        assert saved.dtype == value.dtype and np.array_equal(saved, value), f"{path.name} run: {name}"
    got = edgeq.load(path, threads=1).predict(x, raw=True)
    assert sorted(got) == sorted(expected)
    for name, value in expected.items():
        assert np.array_equal(got[name], value), f"{path.name} predict: {name}"
    report_path = tmp / f"{path.stem}.json"
    assert main(["profile", str(path), "--input", str(npy), "--runs", "20", "--ops", "--json-out", str(report_path),
                 "--threads", "1", "--no-memory", "--ops-rounds", "3", "--warmup", "2"]) == 0, capsys.readouterr().err
    result = json.loads(report_path.read_text())["results"][0]
    ops = result["ops"]["ops"]
    assert len(ops) == row["ops"]  # every operator of every subgraph, timed or saying why not
    assert all(o["ms"] >= 0 and (o["not_timed"] is None or o["ms"] == 0) for o in ops)
    timed = sum(o["not_timed"] is None for o in ops)
    assert timed, f"{path.name}: no operator was timed"
    row.update(result=f"ok, {timed} ops timed alone", p50_ms=round(result["latency"]["p50_ms"], 2))
    return row


@pytest.mark.parametrize("package", sorted(CORPUS))
def test_every_corpus_model_runs_as_on_bare_litert(package, zoo_files, tmp_path, capsys):
    rows = []
    for path in zoo_files(package, CORPUS[package]):
        folder = tmp_path / path.stem
        folder.mkdir()
        rows.append(check_model(path, folder, capsys))
    with capsys.disabled():  # the corpus table (pytest -s shows it with the test's name)
        for r in rows:
            print(f"\n  {package:12} {r['model']:42} {r['ops']:5} ops  p50 {r['p50_ms']} ms  {r['result']}", end="")
