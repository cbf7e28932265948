"""Fuzzed models: mutants of real models are loaded and run in worker processes; none may crash or hang.

The mutations and the workers are ``benchmarks/fuzz.py``; CI runs a fixed, bounded set of mutants
(``CI_MUTANTS`` per seed model, seed 0); ``python benchmarks/fuzz.py`` runs the full campaign (1000+ per
model) and writes the figures.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
CI_MUTANTS = 150


def _assert_clean(results: dict, mutants: int) -> None:
    for name, r in results.items():
        failures = r.to_dict()["failures"]
        assert not failures, f"{name}: {json.dumps(failures, indent=1)}"
        assert r.mutants == mutants
        # the mutations reach the checks: a good share is refused before the interpreter sees it
        assert r.outcomes["rejected"] > mutants * 0.3, (name, dict(r.outcomes))
        assert r.outcomes["ran"] > 0, (name, dict(r.outcomes))


@pytest.mark.tf
def test_mutants_of_real_models_never_crash_or_hang(fuzz, edgeq_float_io, tfl_float16, while_model, tmp_path):
    """edgeq-made int8 (bundled sample; float IO), float16, and two signatures + WHILE (4 subgraphs)."""
    seeds = {"sample": SAMPLE_MODEL, "int8_float_io": edgeq_float_io, "float16": tfl_float16, "multi": while_model}
    results = fuzz.campaign(seeds, CI_MUTANTS, seed=0, jobs=2, timeout=20.0, raw=False, keep=tmp_path / "kept",
                            progress=False)
    _assert_clean(results, CI_MUTANTS)
    for name, r in results.items():
        assert set(r.by_mutator) == set(fuzz.MUTATORS), (name, sorted(r.by_mutator))


def test_fuzz_script_writes_its_report(fuzz, tmp_path):
    """The script end to end without TensorFlow: one mutant per mutation kind of the sample, JSON written."""
    out = tmp_path / "fuzz.json"
    code = fuzz.main(["--model", f"sample={SAMPLE_MODEL}", "--mutants", str(len(fuzz.MUTATORS)), "--jobs", "1",
                      "--json", str(out)])
    report = json.loads(out.read_text())
    sample = report["models"]["sample"]
    assert code == 0 and sample["mutants"] == len(fuzz.MUTATORS)
    assert sum(sample["outcomes"].values()) == sample["mutants"]
    assert set(sample["by_mutator"]) <= set(fuzz.MUTATORS)


def test_mutants_are_reproducible(fuzz):
    data = SAMPLE_MODEL.read_bytes()
    for index in range(2 * len(fuzz.MUTATORS)):
        first, second = fuzz.mutant(data, "sample", index, 7), fuzz.mutant(data, "sample", index, 7)
        assert first == second
        assert first[1] != data or first[0] in ("splice", "index_swap")  # a swap or a splice can be a no-op


def test_a_crashing_worker_is_reported_not_fatal(fuzz, tmp_path):
    """The harness itself: a worker killed by a signal counts as a crash and is replaced."""
    worker = fuzz.Worker(raw=False, timeout=20.0, log_dir=tmp_path)
    try:
        assert worker.run(SAMPLE_MODEL)[0] == "ran"
        worker.proc.send_signal(signal.SIGSEGV)  # SIGSEGV while idle: the next trial sees a dead worker
        outcome, detail, _ = worker.run(SAMPLE_MODEL)
        assert outcome == "crash" and "SIGSEGV" in detail
        assert worker.run(SAMPLE_MODEL)[0] == "ran"
    finally:
        worker.close()


def test_mutated_metadata_and_reports_end_cleanly(fuzz, tmp_path):
    """``--documents``: mutated metadata JSON and report JSON give exit 0 or a one-line exit 2, nothing else."""
    out = tmp_path / "documents.json"
    code = fuzz.main(["--documents", "21", "--json", str(out)])  # 3 mutants of each of the 7 JSON mutators
    report = json.loads(out.read_text())
    assert report["bad"] == 0, json.dumps(report["examples"], indent=1)
    assert code == 0
    for doc in ("metadata", "report"):
        outcomes = report["outcomes"][doc]
        assert outcomes.get("clean", 0) > 0 and outcomes.get("ok", 0) > 0, (doc, outcomes)  # both paths exercised
