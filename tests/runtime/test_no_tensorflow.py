"""The runtime works where TensorFlow is not installed (a Raspberry Pi).

Each test runs a fresh interpreter in which ``sys.modules['tensorflow']`` (and ``keras``) are ``None``,
so any attempt to import them raises ImportError, and checks afterwards that none got imported.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support import (
    LABELS,
    README_TOLERANCE_POINTS,
    SAMPLE_EVAL,
    SAMPLE_MODEL,
    readme_sample_accuracy,
    run_cli,
    tflite_reference,
)


HEAVY = ("tensorflow", "keras", "tf_keras", "rich", "PIL")


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def _loaded(heavy: tuple[str, ...] = HEAVY) -> str:
    return f"sorted({{m.split('.')[0] for m in sys.modules if m.split('.')[0] in {heavy!r} and sys.modules[m] is not None}})"


def test_import_runtime_loads_no_tensorflow_keras_rich_or_pillow():
    code = f"import sys, json\nimport edgeq, edgeq.runtime, edgeq.errors, edgeq.metadata\nprint(json.dumps({_loaded()}))"
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []


def test_importing_the_runtime_works_with_tensorflow_blocked():
    code = (
        "import sys, json\nfor m in ('tensorflow', 'keras'): sys.modules[m] = None\n"
        "import edgeq.runtime\nfrom edgeq.runtime import Model, load, get_backend\n"
        f"print(json.dumps([get_backend().name, {_loaded()}]))"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["litert", []]


def test_asking_for_the_tensorflow_backend_without_it_names_what_to_install():
    code = (
        "import sys\nfor m in ('tensorflow', 'keras'): sys.modules[m] = None\n"
        "from edgeq.runtime import get_backend\nfrom edgeq.errors import DependencyMissing\n"
        "try:\n    get_backend('tensorflow')\nexcept DependencyMissing as e:\n    print(e)\n"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    assert "backend 'tensorflow' cannot be imported" in proc.stdout and "install tensorflow" in proc.stdout


@pytest.mark.tf  # the model is made with TensorFlow here; the child process never sees it
def test_running_a_model_on_arrays_needs_neither_tensorflow_nor_pillow_nor_rich(edgeq_int8):
    code = (
        "import sys, json\nfor m in ('tensorflow', 'keras'): sys.modules[m] = None\n"
        "import numpy as np\nfrom edgeq.runtime import Model\n"
        f"m = Model({str(edgeq_int8)!r})\n"
        "out = m.predict(np.zeros((1, 16, 16, 3), np.float32))['output_0']\n"
        f"print(json.dumps([out.tolist(), {_loaded()}]))"
    )
    proc = _python(code)
    assert proc.returncode == 0, proc.stderr
    out, loaded = json.loads(proc.stdout)
    assert np.asarray(out).shape == (1, len(LABELS)) and loaded == []


@pytest.mark.tf
def test_edgeq_run_without_tensorflow(edgeq_int8, photo, image_folder):
    from edgeq.runtime import Model

    proc = run_cli("run", str(edgeq_int8), str(photo), str(image_folder), "--json", "--top", "2", block_tf=True)
    assert proc.returncode == 0, proc.stderr  # 97 would mean TensorFlow or Keras got imported
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    files = sorted(p for p in image_folder.rglob("*") if p.is_file())
    assert [r["input"] for r in records] == [str(photo), *map(str, files)]
    model = Model(edgeq_int8)
    for record, path in zip(records, [photo, *files]):
        expected = model.predict(path)["output_0"]
        np.testing.assert_array_equal(np.asarray(record["outputs"]["output_0"], np.float32), expected)
        assert [t["label"] for t in record["top"]] == [label for label, _ in model.classify(path, 2)]
    # and the runtime's answer is TensorFlow's: same quantized input, same raw output
    (q,) = model.prepare(photo)
    tf_raw = tflite_reference(edgeq_int8, {"image": q})["output_0"]
    spec = model.outputs[0]
    np.testing.assert_allclose(records[0]["outputs"]["output_0"], (tf_raw.astype(np.float32) - spec.zero_point) * spec.scale)


@pytest.mark.skipif(not SAMPLE_MODEL.exists(), reason=f"the bundled sample {SAMPLE_MODEL} is not built yet")
def test_bundled_sample_runs_without_tensorflow():
    """``edgeq run`` on the Fashion-MNIST sample's 1000 eval images, TensorFlow blocked: the README's top-1."""
    labels = (SAMPLE_MODEL.parent / "labels.txt").read_text().splitlines()
    proc = run_cli("run", str(SAMPLE_MODEL), str(SAMPLE_EVAL), "--json", "--top", "1", block_tf=True)
    assert proc.returncode == 0, proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(records) == sum(1 for p in SAMPLE_EVAL.rglob("*.png"))
    correct = 0
    for record in records:
        folder = Path(record["input"]).parent.name  # "3_dress": class index 3
        correct += record["top"][0]["label"] == labels[int(folder.split("_")[0])]
    claimed = readme_sample_accuracy()["int8"]
    assert abs(correct / len(records) - claimed) * 100 <= README_TOLERANCE_POINTS, (
        f"top-1 accuracy {correct / len(records):.3f} on the sample's eval images; README.md says {claimed:.3f}")
