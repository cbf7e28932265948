"""One ``Model`` shared by many threads returns, for every call, exactly what a serial call returns.

Without the lock around set_tensor/invoke/get_tensor, 8 threads on one interpreter raised InferenceError
and returned another call's outputs for 0.5-1.4 % of the calls.

``throughput()`` compares a shared ``Model`` with one ``Model`` per thread; run it from tests/robustness with
``python -c "import test_threads as t; print(t.throughput())"``.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from edgeq.runtime import Model

SAMPLE_MODEL = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
THREADS = 8
CALLS = 60


def _inputs(n: int) -> list[np.ndarray]:
    return [np.random.default_rng(i).random((1, 28, 28, 1), dtype=np.float32) for i in range(n)]


def _hammer(models: list[Model], xs: list[np.ndarray], calls: int) -> list[list[tuple[int, dict]]]:
    """Each thread ``t`` predicts ``calls`` inputs (its own rotation of ``xs``) on ``models[t]``."""
    results: list[list[tuple[int, dict]]] = [[] for _ in models]
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(models))

    def work(t: int) -> None:
        try:
            barrier.wait()
            for c in range(calls):
                i = (t * 7 + c) % len(xs)
                results[t].append((i, models[t].predict(xs[i], raw=True)))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(len(models))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, f"{len(errors)} call(s) failed, first: {errors[0]!r}"
    return results


def test_one_model_from_eight_threads_matches_the_serial_results() -> None:
    model = Model(SAMPLE_MODEL, threads=1)
    xs = _inputs(16)
    serial = [model.predict(x, raw=True) for x in xs]
    assert len({serial[i]["output_0"].tobytes() for i in range(len(xs))}) > 8, "inputs must give distinct outputs"
    results = _hammer([model] * THREADS, xs, CALLS)
    wrong = sum(not np.array_equal(out[k], serial[i][k]) for per in results for i, out in per for k in out)
    assert sum(len(per) for per in results) == THREADS * CALLS
    assert wrong == 0, f"{wrong} of {THREADS * CALLS} outputs differ from the serial result"


def throughput(threads: int = THREADS, calls: int = 150) -> dict[str, float]:
    """Inferences per second: one shared ``Model`` (serialised) vs one ``Model`` per thread."""
    xs = _inputs(threads)
    shared = Model(SAMPLE_MODEL, threads=1)
    own = [Model(SAMPLE_MODEL, threads=1) for _ in range(threads)]
    out = {}
    for name, models in (("shared", [shared] * threads), ("per_thread", own)):
        started = time.perf_counter()
        _hammer(models, xs, calls)
        out[name] = threads * calls / (time.perf_counter() - started)
    return out
