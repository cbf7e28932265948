"""The proof cache of ``parse`` (edgeq/_checked.py): a model that passed is not checked again, and nothing else is.

A corrupt model must fail however the cache is primed: the cases prove a valid model, then parse a corrupt one that
differs from it only in the bytes of one quantization parameter (same length, same layout), from memory and from
the on-disk proofs of another process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgeq import _checked
from edgeq._flatbuffer import _Lazy, parse
from edgeq.errors import ModelError

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(tmp_path / "cache"))
    forget()
    yield tmp_path / "cache"
    forget()


def forget() -> None:
    """Start as a new process would (the proofs on disk stay)."""
    _checked._recent.clear()
    _checked._proven.clear()


def zero_point(value: int):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        m.subgraphs[0].tensors[12].quantization.zeroPoint = [value]
    return change


@pytest.fixture
def twins(edit) -> tuple[bytes, bytes]:  # type: ignore[no-untyped-def]
    """A valid model and a corrupt one (zero point 200 for INT8) that differ only in that value's bytes."""
    valid, corrupt = edit(SAMPLE, zero_point(3)), edit(SAMPLE, zero_point(200))
    assert len(valid) == len(corrupt) and sum(a != b for a, b in zip(valid, corrupt)) == 1
    return valid, corrupt


@pytest.mark.parametrize("name", ["edgeq_int8", "tfl_multi_io", "tfl_two_signatures", "tfl_custom_op", "while_model"])
@pytest.mark.tf
def test_a_proven_model_reads_the_same(request, name):
    data = request.getfixturevalue(name).read_bytes()
    full = parse(data)
    assert isinstance(full.subgraphs[0].tensors, tuple)  # checked in full the first time
    again = parse(bytes(data))  # a fresh copy: found by content, not identity
    assert isinstance(again.subgraphs[0].tensors, _Lazy)
    assert again == full
    for a, b in zip(again.subgraphs, full.subgraphs):
        assert tuple(a.tensors) == b.tensors and tuple(a.operators) == b.operators
        assert [o.options for o in a.operators] == [o.options for o in b.operators]  # not part of ==
    assert tuple(again.buffer_sizes) == full.buffer_sizes
    assert again.op_counts() == full.op_counts() and again.subgraphs[0].tensors[-1] == full.subgraphs[0].tensors[-1]


def test_a_changed_byte_is_checked_again(twins):
    valid, corrupt = twins
    parse(valid)
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # proven in memory: compared byte for byte
    forget()
    parse(valid)
    _checked._recent.clear()
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # proven by hash
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)  # and a failure is never remembered


def test_proofs_outlive_the_process(twins, cache):
    valid, corrupt = twins
    path = cache.parent / "valid.tflite"
    path.write_bytes(valid)
    code = "import sys; from edgeq._flatbuffer import parse; parse(open(sys.argv[1], 'rb').read())"
    subprocess.run([sys.executable, "-c", code, str(path)], check=True)
    markers = list(cache.glob("checked/*/*"))
    assert [m.name for m in markers] == [_checked.key(memoryview(valid)).hex()] and markers[0].stat().st_size == 0
    assert isinstance(parse(valid).subgraphs[0].tensors, _Lazy)  # this process trusts the other's proof
    with pytest.raises(ModelError, match="zero point of 200"):
        parse(corrupt)


def test_an_empty_cache_dir_keeps_proofs_in_memory(twins, cache, monkeypatch):
    monkeypatch.setenv("EDGEQ_CACHE_DIR", "")
    parse(twins[0])
    assert not cache.exists()
    assert isinstance(parse(twins[0]).subgraphs[0].tensors, _Lazy)
    forget()
    assert isinstance(parse(twins[0]).subgraphs[0].tensors, tuple)


def test_an_unwritable_cache_dir_is_skipped(twins, cache, monkeypatch):
    cache.parent.joinpath("file").write_text("not a folder")
    monkeypatch.setenv("EDGEQ_CACHE_DIR", str(cache.parent / "file"))
    parse(twins[0])  # no error: the proof stays in memory
    assert isinstance(parse(twins[0]).subgraphs[0].tensors, _Lazy)
