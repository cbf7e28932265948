"""Checks that can fail: is the float model's behaviour on the calibration data plausible at all?

A model fed wrongly normalised data often predicts one class for everything, and its int8 copy agrees
with it perfectly; agreement and SQNR cannot see that. These checks look at the float model alone.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from edgeq._progress import step
from edgeq.runtime.output_stats import looks_like_scores

from edgeq.converters.datasets import Sample
from edgeq.converters.source import SourceModel

#: one class for at least this share of the samples is degenerate (classifiers with 3+ classes)
ONE_CLASS_SHARE = 0.9
#: outputs whose spread across samples is below this fraction of their magnitude are near-constant
CONSTANT_SPREAD = 1e-3
#: fewer samples than this say nothing
MIN_SAMPLES = 10
#: samples the float model predicts at once when its batch dimension is dynamic
BATCH = 32
HINT = "the data or its preprocessing is probably wrong (check --normalize; see docs/preprocessing.md)"


def float_outputs(source: SourceModel, samples: Sequence[Sample],
                  what: str = "Float model on the calibration data") -> list[dict[str, np.ndarray]]:
    """The float model's named outputs for each sample (batched when the batch dimension is dynamic).

    Args:
        source: the float model.
        samples: one array per input each, in ``source.inputs`` order.
        what: the progress step's label.
    """
    batch = BATCH if all(spec.shape[0] is None for spec in source.inputs) else 1
    results: list[dict[str, np.ndarray]] = []
    with step(what, len(samples)) as advance:
        for start in range(0, len(samples), batch):
            chunk = samples[start:start + batch]
            shapes = {tuple(a.shape for a in s) for s in chunk}
            if len(chunk) == 1 or len(shapes) != 1:
                results += [source.predict_named(s) for s in chunk]
            else:
                named = source.predict_named([np.concatenate([s[i] for s in chunk]) for i in range(len(source.inputs))])
                results += [{k: v[j:j + 1] for k, v in named.items()} for j in range(len(chunk))]
            advance(len(chunk))
    return results


def degenerate_outputs(outputs: Sequence[dict[str, np.ndarray]], what: str = "calibration samples") -> list[str]:
    """Warnings for outputs that are (nearly) one class for every sample, or (nearly) constant."""
    if len(outputs) < MIN_SAMPLES:
        return []
    found = []
    for name in outputs[0]:
        if len({np.shape(o[name]) for o in outputs}) > 1:  # a dynamic-size output: samples of other sizes differ anyway
            continue
        stack = np.stack([np.asarray(o[name], dtype=np.float64).reshape(-1) for o in outputs])
        first = np.asarray(outputs[0][name])
        spread = float(stack.std(axis=0).max())
        level = float(np.abs(stack).mean())
        if spread <= CONSTANT_SPREAD * level or spread == 0:
            found.append(f"output {name} of the float model is nearly constant over the {len(outputs)} {what} "
                         f"(spread {spread:.3g} vs magnitude {level:.3g}): {HINT}")
            continue
        if looks_like_scores(first) and first.shape[-1] >= 3:
            top = np.argmax(stack.reshape(len(outputs), -1, first.shape[-1]), axis=-1).reshape(-1)
            counts = np.bincount(top, minlength=first.shape[-1])
            share = counts.max() / counts.sum()
            if share >= ONE_CLASS_SHARE:
                found.append(f"the float model predicts class {int(counts.argmax())} for {share * 100:.0f} % of the "
                             f"{len(outputs)} {what} (output {name}): {HINT}")
    return found
