"""The run path's value classes (`edgeq._frozen.Frozen`) behave like the frozen dataclasses they replaced."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from edgeq._flatbuffer import OperatorInfo, TensorInfo
from edgeq.runtime import TensorSpec


def spec(**changes: object) -> TensorSpec:
    fields = dict(name="x", index=0, shape=(1, 4), shape_signature=(-1, 4), dtype=np.dtype("int8"), scale=0.5)
    return TensorSpec(**{**fields, **changes})  # type: ignore[arg-type]


def test_equal_by_value_hashable_and_shown_like_a_dataclass():
    assert spec() == spec() and hash(spec()) == hash(spec())
    assert spec() != spec(zero_point=1) and spec() != spec(name="y")
    assert len({spec(), spec(), spec(index=1)}) == 2
    assert repr(spec()) == ("TensorSpec(name='x', index=0, shape=(1, 4), shape_signature=(-1, 4), "
                            "dtype=dtype('int8'), scale=0.5, zero_point=0)")
    assert spec().zero_point == 0  # the defaults


def test_immutable():
    s = spec()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.scale = 1.0  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        del s.name
    assert s.scale == 0.5


def test_a_class_of_another_type_is_never_equal():
    t = TensorInfo(0, "x", (1,), (1,), "int8", 0)
    assert t != spec() and t == TensorInfo(0, "x", (1,), (1,), "int8", 0)
    assert t != TensorInfo(0, "x", (1,), (1,), "int8", 0, scales=(0.5,))


def test_operator_options_are_not_compared():
    a = OperatorInfo(0, "CONV_2D", (0, 1), (2,), options={"stride_w": 1})
    assert a == OperatorInfo(0, "CONV_2D", (0, 1), (2,), options={"stride_w": 2})
    assert a != OperatorInfo(0, "CONV_2D", (0, 1), (2,), version=2, options={"stride_w": 1})
    assert OperatorInfo(1, "ADD", (0,), (1,)).options == {}


def test_pickles():
    s = spec()
    assert pickle.loads(pickle.dumps(s)) == s
