"""``edgeq eval`` names classes in the per-class table, the confusion rows and the most-confused pairs: by the
model's labels, else by the data's class folders (never bare indices when the data has names). No TensorFlow."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgeq.cli import main
from edgeq.metadata import read_metadata
from support import REPO

SAMPLE = REPO / "samples" / "fashion_mnist"


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's int8 model with its labels removed from the embedded metadata."""
    pytest.importorskip("ai_edge_litert.tools.flatbuffer_utils")
    from edgeq.converters.embed import embed_metadata

    path = tmp_path_factory.mktemp("unlabelled") / "model.tflite"
    model = SAMPLE / "model_int8.tflite"
    meta = dataclasses.replace(read_metadata(model), labels=())
    path.write_bytes(embed_metadata(model.read_bytes(), meta))
    assert not read_metadata(path).labels
    return path


def _confusion_text(out: str) -> str:
    return out[out.index("Confusion"):]


def test_eval_names_classes_by_the_data_when_the_model_has_no_labels(unlabelled: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # names must not wrap inside a row at 80 columns
    assert main(["eval", str(unlabelled), "--data", str(SAMPLE / "eval")]) == 0
    text = _confusion_text(capsys.readouterr().out)
    assert "│ 0 0_tshirt_top " in text and "│ 9 9_ankle_boot " in text
    pairs = text[text.index("most confused"):].splitlines()[1:]
    assert pairs and all("→" in p and "_" in p for p in pairs), pairs  # data names, one pair per line
    assert "0_tshirt_top → 6_shirt: 9" in text


def test_eval_uses_the_models_labels(capsys, monkeypatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["eval", str(SAMPLE / "model_int8.tflite"), "--data", str(SAMPLE / "eval")]) == 0
    text = _confusion_text(capsys.readouterr().out)
    assert "│ 0 T-shirt/top " in text and "T-shirt/top → Shirt: 9" in text
