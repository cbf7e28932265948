"""``convert --refine``: GPTQ weight rounding and bias correction of the .tflite, judged on held-back samples.

Every comparison is plain vs refined on the same data, against the float Keras model, on samples that were
neither calibration nor refinement data (``spike.eval``, the sample's eval images).
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

import edgeq
from edgeq._flatbuffer import parse
from edgeq.cli import main
from edgeq.converters.refine import _refine, refine
from edgeq.runtime import Model
from support import SAMPLE_EVAL, error_line, run_cli

pytestmark = pytest.mark.tf


def _errors(model_path, x: np.ndarray, reference: np.ndarray) -> tuple[float, float, float]:
    """Mean |error|, top-1 agreement and SQNR (dB) of a .tflite against float outputs, one sample at a time."""
    from edgeq.runtime.output_stats import sqnr_db

    model = Model(model_path, threads=1)
    out = np.stack([next(iter(model.predict(x[i : i + 1]).values())).reshape(-1) for i in range(len(x))])
    err = float(np.mean(np.abs(out - reference)))
    return err, float(np.mean(np.argmax(out, 1) == np.argmax(reference, 1))), sqnr_db(reference, out)


@pytest.fixture(scope="module")
def spike_pair(spike, tmp_path_factory):
    """The spike model converted to int8 plainly and with --refine, and its float outputs on the eval images."""
    import keras

    root = tmp_path_factory.mktemp("refine")
    plain = edgeq.convert(spike.keras, spike.calib, root / "plain.tflite")
    refined = edgeq.convert(spike.keras, spike.calib, root / "refined.tflite", refine=True)
    x = np.load(spike.eval)["x"]
    reference = keras.models.load_model(spike.keras, compile=False).predict(x, verbose=0)
    return plain, refined, x, reference


def test_refine_lowers_the_error_of_a_model_plain_int8_hurts(spike_pair):
    plain, refined, x, reference = spike_pair
    plain_err, plain_agreement, _ = _errors(plain.out, x, reference)
    refined_err, refined_agreement, _ = _errors(refined.out, x, reference)
    assert refined_err < 0.5 * plain_err, (plain_err, refined_err)
    assert refined_agreement >= plain_agreement
    report = refined.refine
    assert report.layers == 5 and any(s.kept for s in report.steps)
    # the table's plain column is the plain conversion's own verification, on the same samples
    assert report.plain.mean_abs_error == pytest.approx(plain.verification.mean_abs_error, rel=1e-6)
    assert refined.seconds["refine"] > 0


def test_each_step_is_kept_only_where_it_lowered_the_held_back_error(spike_pair):
    _, refined, _, _ = spike_pair
    steps = refined.refine.steps
    assert [s.name for s in steps] == list(_refine.STEPS)
    for s in steps:  # kept: at least MARGIN lower; undone: the model is as it was before the step
        assert not s.kept or s.error_after < s.error_before * (1 - _refine.MARGIN)
    assert refined.refine.error_refined <= refined.refine.error_plain
    json.dumps(refined.refine.to_dict())  # plain JSON types, for --json and the benchmarks
    assert refined.metadata.quant.calibration["refine"] == [s.name for s in steps if s.kept]


def test_refined_model_passes_the_model_check_and_runs_identically_on_litert(spike_pair):
    from ai_edge_litert.interpreter import Interpreter

    _, refined, x, _ = spike_pair
    data = refined.out.read_bytes()
    parse(data)  # the structural and kernel-input checks every model goes through
    model = Model(refined.out, threads=1)
    interpreter = Interpreter(model_content=data, num_threads=1)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    for i in range(5):
        raw = model.predict(x[i : i + 1], raw=True)
        interpreter.set_tensor(inp["index"], model.prepare(x[i : i + 1])[0])
        interpreter.invoke()
        np.testing.assert_array_equal(next(iter(raw.values())), interpreter.get_tensor(out["index"]))


def test_a_step_that_does_not_help_is_undone(spike, spike_pair, tmp_path, monkeypatch):
    """Proposals that look better layer by layer (random weights) must not survive the held-back check."""
    plain = spike_pair[0]
    quantized = plain.out.read_bytes()
    reference = edgeq.convert(spike.keras, spike.calib, tmp_path / "float.tflite", mode="float32").out.read_bytes()
    calib = np.load(spike.calib)[:40]
    rng = np.random.default_rng(0)

    def garbage(self, name, pair, fit, current):
        return [(rng.integers(-127, 128, size=current[:, :, :-1].shape), current[:, :, -1] * 3, None)]

    monkeypatch.setattr(_refine._Refiner, "_propose", garbage)
    calls = itertools.count()
    # each proposal looks better than the last on its layer's held-back statistics
    monkeypatch.setattr(_refine, "error_changes", lambda candidates, current, v, stats:
                        ([-1.0 - next(calls) for _ in candidates], 1.0))
    steps = ("weight rounding", "bias correction")
    out, report = refine(quantized, reference, [[calib[i : i + 1]] for i in range(len(calib))], steps=steps)
    assert [s.layers for s in report.steps] == [5, 5]  # every layer was changed, then undone with its step
    assert not any(s.kept for s in report.steps) and all(s.error_after > s.error_before for s in report.steps)
    assert out == quantized


def test_refine_is_never_worse_when_layers_are_refined_in_blocks(spike, spike_pair, tmp_path, monkeypatch):
    """A step undone after several blocks leaves exactly the model before it (held-back error measured anew)."""
    from edgeq.converters.refine._run import predict_all

    quantized = spike_pair[0].out.read_bytes()
    reference = edgeq.convert(spike.keras, spike.calib, tmp_path / "float.tflite", mode="float32").out.read_bytes()
    calib = np.load(spike.calib)
    samples = [[calib[i : i + 1]] for i in range(len(calib))]
    monkeypatch.setattr(_refine, "MAX_PASSES", 2)  # 5 layers: blocks of 3 and 2, each pass on the model so far
    assert _refine.blocks(5, 2) == [[0, 1, 2], [3, 4]]

    def spoilt_biases(self, name, pair, fit, current):  # pushes every bias far off ...
        return [(None, current[:, :, -1] + 10 * np.abs(current[:, :, -1]).max() + 1, None)]

    monkeypatch.setattr(_refine._Refiner, "_propose", spoilt_biases)
    monkeypatch.setattr(_refine, "error_changes", lambda candidates, current, v, stats:  # ... and each layer takes it
                        ([-1.0] * len(candidates), 1.0))
    out, report = refine(quantized, reference, samples, steps=("activation ranges", "bias correction", "bias correction"))
    ranges, biases, again = report.steps
    assert ranges.kept and biases.layers == again.layers == 5  # the spiky activation's range, then nothing
    assert not biases.kept and biases.error_after > biases.error_before == pytest.approx(ranges.error_after, rel=1e-9)
    assert not again.kept and again.error_before == pytest.approx(ranges.error_after, rel=1e-9)  # fully restored
    check = samples[-report.check_samples:]
    floats = predict_all(reference, check)

    def held_back_error(model: bytes) -> float:
        return float(np.mean(np.concatenate([np.abs(o - r) for o, r in zip(predict_all(model, check), floats)])))

    assert held_back_error(quantized) == pytest.approx(ranges.error_before, rel=1e-9)
    assert held_back_error(out) == pytest.approx(ranges.error_after, rel=1e-9)
    assert ranges.error_after < ranges.error_before


def test_blocks_cut_the_layers_into_at_most_the_passes_given():
    for count, passes in [(1, 8), (5, 8), (5, 2), (52, 8), (53, 8), (9, 3)]:
        cut = _refine.blocks(count, passes)
        assert len(cut) <= passes and sum(cut, []) == list(range(count))
        assert len({len(b) for b in cut[:-1]}) <= 1 and len(cut[-1]) <= len(cut[0])


@pytest.mark.slow
def test_int4_refine_gains_at_least_6_db_on_the_sample(tmp_path):
    from edgeq.converters.datasets import load_samples
    from edgeq.converters.source import InputSpec

    sample = SAMPLE_EVAL.parent
    samples = load_samples(SAMPLE_EVAL, [InputSpec("image", (None, 28, 28, 1), "float32")], samples=100_000)
    x = np.concatenate([s[0] for s in samples.calibration])[::4]  # 255 held-out images, never calibrated on
    import keras

    reference = keras.models.load_model(sample / "model.keras", compile=False).predict(x, verbose=0)
    plain = edgeq.convert(sample / "model.keras", sample / "calib", tmp_path / "int4.tflite", mode="int4-weights")
    refined = edgeq.convert(sample / "model.keras", sample / "calib", tmp_path / "int4_refined.tflite",
                            mode="int4-weights", refine=True)
    plain_err, plain_agreement, plain_sqnr = _errors(plain.out, x, reference)
    refined_err, refined_agreement, refined_sqnr = _errors(refined.out, x, reference)
    assert refined_sqnr >= plain_sqnr + 6, (plain_sqnr, refined_sqnr)
    assert refined_err < plain_err / 2 and refined_agreement >= plain_agreement
    assert refined.metadata.quant.weights["refine"][0] == "weight rounding"


@pytest.mark.parametrize("args, expected", [
    (["--data", "calib", "--mode", "float16"],
     "--refine works with --mode int8, uint8, int8-weights, int4-weights. Received: --mode float16"),
    (["--mode", "int4-weights"], "--refine needs --data"),
])
def test_refine_refuses_what_it_cannot_do(args, expected, tmp_path):
    sample = SAMPLE_EVAL.parent
    args = [str(sample / a) if a == "calib" else a for a in args]
    proc = run_cli("convert", str(sample / "model.keras"), *args, "--refine", "--out", str(tmp_path / "m.tflite"))
    assert proc.returncode == 2 and error_line(proc).startswith("UsageError: " + expected), proc.stderr
    assert not (tmp_path / "m.tflite").exists()


@pytest.mark.slow
def test_cli_shows_plain_vs_refined(spike, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    out = tmp_path / "r.tflite"
    assert main(["convert", str(spike.keras), "--data", str(spike.calib), "--refine", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "--refine: plain vs refined conversion" in text and "step: weight rounding" in text
    assert main(["convert", str(spike.keras), "--data", str(spike.calib), "--refine", "--out", str(out), "--force",
                 "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["refine"]["plain"]["mean_abs_error"] >= result["verification"]["mean_abs_error"]
    assert result["seconds"]["refine"] > 0


def test_layers_whose_biases_share_a_buffer_are_refined_separately(tmp_path):
    """Convolutions without a bias get zero biases the converter stores once; refining one must not change another."""
    import keras

    from edgeq.converters.refine import _layers
    from ai_edge_litert.tools import flatbuffer_utils

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, activation="relu")(inp)
    x = keras.layers.Conv2D(8, 3, padding="same", use_bias=False, activation="relu")(x)
    model = keras.Model(inp, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    model.save(tmp_path / "m.keras")
    data = np.random.default_rng(0).random((40, 8, 8, 3), dtype=np.float32)
    np.save(tmp_path / "d.npy", data)
    quantized = edgeq.convert(tmp_path / "m.keras", tmp_path / "d.npy", tmp_path / "q.tflite").out.read_bytes()
    reference = edgeq.convert(tmp_path / "m.keras", None, tmp_path / "f.tflite", mode="float32").out.read_bytes()
    plain = flatbuffer_utils.convert_bytearray_to_object(bytearray(quantized))
    convs = [layer for layer in _layers.find_layers(plain, quantized=True) if layer.kind == "CONV_2D"]
    graph = plain.subgraphs[0]
    assert len({graph.tensors[c.bias].buffer for c in convs}) == 1  # the case under test: one shared zero bias
    out, report = refine(quantized, reference, [[data[i : i + 1]] for i in range(len(data))],
                         steps=("bias correction",))
    # both convs; the converter drops the Dense's zero bias, and a layer without a bias is not refined
    assert (report.layers, report.candidates) == (2, 3)
    refined = flatbuffer_utils.convert_bytearray_to_object(bytearray(out))
    biases = [_layers.read_bias(refined, c) for c in convs]
    if report.steps[0].kept:  # each conv got its own correction, written to its own buffer
        assert len({refined.subgraphs[0].tensors[c.bias].buffer for c in convs}) == 2
        assert not np.array_equal(biases[0], biases[1])
    Model(out).predict(data[:1])  # passes the model check and runs
