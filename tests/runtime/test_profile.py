"""`edgeq.runtime.profile` on real small models: statistics, per-op times, memory, the report schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgeq._io import sha256_of
from edgeq.errors import DataError, ModelError, UsageError
from edgeq.runtime.profile import profile
from edgeq.runtime.report import SCHEMA_VERSION, LatencyStats, ProfileReport, compare, load_report

#: per-op sum / whole-model time with minimums (see OpProfile.ratio_min); about 1.0-1.15 measured on
#: an idle or busy 2-core x86 and within this band on a loaded CI runner
OPS_RATIO_MIN_TOLERANCE = (0.6, 1.6)
#: the same with medians, which other load on the CPU skews (the whole model is preempted more often)
OPS_RATIO_MEDIAN_TOLERANCE = (0.35, 2.5)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def conv_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A five-conv 64x64 image model as float32 and full-int8 .tflite, about 1 ms per inference on a laptop core."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    import tensorflow as tf

    root = tmp_path_factory.mktemp("profile_models")
    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 3), name="image")
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu")(inp)
    x = keras.layers.Conv2D(48, 3, padding="same", activation="relu")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(64, 1, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    out = keras.layers.Dense(10, activation="softmax")(x)
    keras.Model(inp, out).export(str(root / "saved"), verbose=False)
    (root / "fp32.tflite").write_bytes(tf.lite.TFLiteConverter.from_saved_model(str(root / "saved")).convert())
    rng = np.random.default_rng(0)
    conv = tf.lite.TFLiteConverter.from_saved_model(str(root / "saved"))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rng.random((1, 64, 64, 3), dtype=np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    (root / "int8.tflite").write_bytes(conv.convert())
    return {"fp32": root / "fp32.tflite", "int8": root / "int8.tflite"}


@pytest.fixture(scope="module")
def int8_report(conv_models: dict[str, Path]) -> ProfileReport:
    return profile(conv_models["int8"], threads=[1, 2], runs=40, warmup=2, ops=True, ops_rounds=15, memory=True)


@pytest.mark.tf
def test_percentiles_are_ordered_and_match_the_raw_timings(int8_report: ProfileReport) -> None:
    for r in int8_report.results:
        lat, raw = r.latency, np.asarray(r.timings_ms)
        assert lat.runs == len(raw) == 40
        assert 0 < lat.min_ms <= lat.p50_ms <= lat.p90_ms <= lat.p99_ms <= lat.max_ms
        expected = np.percentile(raw, [50, 90, 99])
        assert [lat.p50_ms, lat.p90_ms, lat.p99_ms] == pytest.approx(expected, abs=2e-4)
        assert lat.mean_ms == pytest.approx(raw.mean(), abs=2e-4)
        assert lat.std_ms == pytest.approx(raw.std(), abs=2e-4)
        assert (lat.min_ms, lat.max_ms) == pytest.approx((raw.min(), raw.max()), abs=2e-4)
        assert lat.fps == pytest.approx(1000 / lat.mean_ms, rel=1e-3)
        assert r.load_ms > 0 and r.first_ms > 0 and r.warmup == 2
    assert [r.threads for r in int8_report.results] == [1, 2]


@pytest.mark.tf
def test_per_op_times_add_up_to_the_whole_model(int8_report: ProfileReport, conv_models: dict[str, Path]) -> None:
    ops = int8_report.result(1).ops
    assert ops is not None and ops.rounds == 15
    assert [o.index for o in ops.ops] == list(range(len(ops.ops)))
    assert {o.op for o in ops.ops} >= {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"}
    assert ops.whole_ms > 0.2, "the model must be big enough for the per-op sum to mean something"
    lo, hi = OPS_RATIO_MIN_TOLERANCE
    assert lo <= ops.ratio_min <= hi, f"per-op sum {ops.sum_min_ms} ms vs whole {ops.whole_min_ms} ms"
    lo, hi = OPS_RATIO_MEDIAN_TOLERANCE
    assert lo <= ops.ratio <= hi, f"per-op sum {ops.sum_ms} ms vs whole {ops.whole_ms} ms"
    assert ops.sum_ms == pytest.approx(sum(o.ms for o in ops.ops), abs=1e-3)
    assert sum(row["share"] for row in ops.by_type()) == pytest.approx(1.0, abs=1e-3)
    # XNNPACK takes int8 convolutions; the one-op graphs say so, and the whole model is one partition
    convs = [o for o in ops.ops if o.op == "CONV_2D"]
    assert all(o.delegated for o in convs) and all(o.dtype == "int8" for o in convs)
    assert ops.delegate_partitions is not None and ops.delegate_partitions >= 1
    assert "one-op model" in ops.method
    assert int8_report.result(2).ops is not None


@pytest.mark.tf
def test_memory_is_measured_in_a_child_process(int8_report: ProfileReport, conv_models: dict[str, Path]) -> None:
    for r in int8_report.results:
        mem = r.memory
        assert mem is not None and "child process" in mem.method
        assert mem.baseline_rss_bytes > 10 * 2**20  # Python + numpy + the interpreter
        assert mem.peak_rss_bytes >= mem.baseline_rss_bytes + mem.peak_rss_delta_bytes - 4096
        assert 0 < mem.load_rss_delta_bytes <= mem.peak_rss_delta_bytes + 4096
        assert mem.peak_rss_delta_bytes < 200 * 2**20  # a 100 kB model: nothing like the parent's TensorFlow


@pytest.mark.tf
def test_report_round_trips_through_json(int8_report: ProfileReport, conv_models: dict[str, Path], tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(int8_report.to_json())
    raw = json.loads(path.read_text())
    assert raw["kind"] == "edgeq-profile" and raw["schema_version"] == SCHEMA_VERSION
    assert raw["model"]["sha256"] == sha256_of(conv_models["int8"].read_bytes())
    assert raw["model"]["size_bytes"] == conv_models["int8"].stat().st_size
    assert raw["model"]["mode"] == "int8" and raw["model"]["mode_source"] == "inferred"
    assert raw["model"]["metadata"] is None  # converted with plain TF, no edgeq metadata
    assert raw["backend"]["name"] and raw["backend"]["version"]
    assert raw["device"]["cores"] and raw["device"]["python"]
    assert raw["results"][0]["ops"]["by_type"][0]["op"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
    again = load_report(path)
    assert again == int8_report
    assert json.loads(again.to_json()) == raw


@pytest.mark.tf
def test_fp32_and_int8_compare(conv_models: dict[str, Path], int8_report: ProfileReport) -> None:
    fp32 = profile(conv_models["fp32"], threads=1, runs=15, warmup=1, memory=False)
    assert fp32.model.mode == "float32" and fp32.results[0].memory is None and fp32.results[0].ops is None
    result = compare([fp32, int8_report], baseline=0)
    assert [(e.mode, e.threads) for e in result.entries] == [("float32", 1), ("int8", 1), ("int8", 2)]
    base = result.entries[0]
    assert all(v == 1.0 for v in base.ratios.values() if v is not None)
    assert result.entries[1].ratios["size_bytes"] < 0.5  # int8 weights are a quarter of float32's
    assert result.entries[1].metrics["p50_ms"] == int8_report.result(1).latency.p50_ms
    with pytest.raises(UsageError, match="baseline"):
        compare([fp32], baseline=3)


@pytest.mark.tf
def test_real_image_input_and_duration(conv_models: dict[str, Path], tmp_path: Path) -> None:
    from PIL import Image

    img = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (80, 100, 3), dtype=np.uint8)).save(img)
    report = profile(conv_models["int8"], threads=[1], duration=0.3, warmup=0, input=img, memory=False)
    assert report.settings["input"] == "photo.png" and report.settings["duration_s"] == 0.3
    assert report.results[0].latency.runs >= 1
    assert sum(report.results[0].timings_ms) <= 0.3 * 1000 + report.results[0].latency.max_ms + 1


@pytest.mark.tf
def test_one_op_models_reproduce_the_full_model(conv_models: dict[str, Path]) -> None:
    """Each cut-out op, fed the captured inputs, computes exactly what it computed inside the whole model."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from edgeq.runtime._opcut import OpCutter

    data = conv_models["int8"].read_bytes()
    full = Interpreter(model_content=data, experimental_preserve_all_tensors=True,
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    full.allocate_tensors()
    d = full.get_input_details()[0]
    full.set_tensor(d["index"], np.random.default_rng(1).integers(-128, 128, d["shape"]).astype(np.int8))
    full.invoke()
    cutter = OpCutter(data)
    for i in range(len(cutter)):
        one = cutter.cut(i)
        interp = Interpreter(model_content=one.content,
                             experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        interp.allocate_tensors()
        for det, src in zip(interp.get_input_details(), one.inputs):
            interp.set_tensor(det["index"], full.get_tensor(src))
        interp.invoke()
        for det, src in zip(interp.get_output_details(), one.outputs):
            np.testing.assert_array_equal(interp.get_tensor(det["index"]), full.get_tensor(src), err_msg=f"op {i} {one.op}")


# ---------------------------------------------------------------------------------------- no TF
@pytest.fixture()
def add_model(tmp_path: Path) -> Path:
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.runtime._opcut import trivial_model

    path = tmp_path / "add.tflite"
    path.write_bytes(trivial_model())
    return path


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"runs": 0}, "runs must be a positive integer"),
        ({"threads": [0]}, "thread counts must be positive"),
        ({"threads": 0}, "thread counts must be positive"),
        ({"threads": []}, "at least one thread count"),
        ({"duration": -1.0}, "duration must be a positive"),
        ({"runs": 5, "duration": 1.0}, "not both"),
        ({"warmup": -1}, "warmup must be"),
        ({"ops_rounds": 0}, "ops_rounds must be"),
    ],
)
def test_bad_arguments_are_usage_errors(add_model: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(UsageError, match=match):
        profile(add_model, memory=False, **kwargs)


def test_models_that_cannot_load_are_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        profile(tmp_path / "missing.tflite", memory=False)
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="not a TFLite model"):
        profile(bad, memory=False)


def test_profile_of_bytes_and_api_defaults(add_model: Path) -> None:
    report = profile(add_model.read_bytes(), runs=5, warmup=0, memory=True, ops=True, ops_rounds=3)
    assert report.model.name == "model bytes" and report.model.mode == "float32"
    assert [r.threads for r in report.results] == sorted({1, report.device.get("recommended_threads") or 1})
    r = report.results[0]
    assert r.memory is not None
    # whether this machine lets a fresh process reset its high-water mark, asked independently
    can_reset = subprocess.run([sys.executable, "-c", "open('/proc/self/clear_refs', 'w').write('5')"],
                               capture_output=True).returncode == 0
    assert r.memory.peak_reset is can_reset
    assert ("reset after imports" in r.memory.method) is can_reset
    assert r.memory.peak_rss_delta_bytes == max(0, r.memory.peak_rss_bytes - r.memory.baseline_rss_bytes)
    assert r.ops is not None and [o.op for o in r.ops.ops] == ["ADD"]
    import edgeq
    from edgeq.runtime import Model

    assert edgeq.profile is profile and edgeq.compare is compare
    loaded = profile(Model(add_model, threads=1), threads=1, runs=2, memory=False)
    assert loaded.model.name == "add.tflite" and loaded.model.sha256 == report.model.sha256


def test_load_report_rejects_other_files(tmp_path: Path, add_model: Path) -> None:
    text = tmp_path / "notes.json"
    text.write_text("this is not json")
    with pytest.raises(DataError, match="is not JSON"):
        load_report(text)
    report = json.loads(profile(add_model, threads=1, runs=3, memory=False).to_json())
    newer = tmp_path / "v2.json"
    newer.write_text(json.dumps({**report, "schema_version": SCHEMA_VERSION + 1}))
    with pytest.raises(DataError, match="schema_version 2, but this edgeq reads version 1"):
        load_report(newer)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"kind": "something-else", "schema_version": 1}))
    with pytest.raises(DataError, match="expected kind 'edgeq-profile'"):
        load_report(other)
    listing = tmp_path / "list.json"
    listing.write_text("[1, 2]")
    with pytest.raises(DataError, match="expected a JSON object"):
        load_report(listing)
    broken = tmp_path / "broken.json"
    del report["results"]
    broken.write_text(json.dumps(report))
    with pytest.raises(DataError, match="'results' is missing"):
        load_report(broken)
    with pytest.raises(DataError, match="not found"):
        load_report(tmp_path / "nope.json")


def test_latency_stats_of_known_values() -> None:
    stats = LatencyStats.from_timings([4.0, 1.0, 3.0, 2.0, 5.0])
    assert (stats.min_ms, stats.p50_ms, stats.max_ms, stats.mean_ms) == (1.0, 3.0, 5.0, 3.0)
    assert stats.p90_ms == pytest.approx(4.6) and stats.p99_ms == pytest.approx(4.96)
    assert stats.fps == pytest.approx(333.333, abs=1e-3)
    with pytest.raises(DataError):
        LatencyStats.from_timings([])


def test_profiling_never_imports_tensorflow_or_rich(add_model: Path) -> None:
    code = (
        "import sys; sys.modules['tensorflow'] = None; sys.modules['keras'] = None\n"
        "from edgeq.runtime.profile import profile\n"
        f"r = profile({str(add_model)!r}, threads=1, runs=3, ops=True, ops_rounds=2, memory=False)\n"
        "assert 'rich' not in sys.modules, 'rich imported'\n"
        "print(r.results[0].latency.runs)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "3"


@pytest.mark.skipif(not (REPO / "samples/fashion_mnist/model_int8.tflite").exists(), reason="sample not built yet")
def test_bundled_sample_profiles() -> None:
    report = profile(REPO / "samples/fashion_mnist/model_int8.tflite", threads=1, runs=20, memory=False, ops=True,
                     ops_rounds=5)
    assert report.model.metadata is not None and report.model.mode_source == "metadata"
    assert report.results[0].ops is not None
