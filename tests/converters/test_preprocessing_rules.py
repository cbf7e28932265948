"""The rules of docs/preprocessing.md, read off Keras models (no conversion: fast)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeq.converters.model_preprocessing import ModelNormalization, check_explicit, decide_normalization
from edgeq.errors import UsageError

pytestmark = pytest.mark.tf


def _wrap(*layers, shape=(32, 32, 3)):  # type: ignore[no-untyped-def]
    import keras

    return keras.Sequential([keras.Input(shape), *layers, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])


def test_rescaling_to_minus_one_one_behind_augmentation_means_raw_pixels():
    import keras

    model = _wrap(keras.layers.RandomFlip(), keras.layers.Rescaling(1 / 127.5, offset=-1), keras.layers.Conv2D(4, 3))
    decided = decide_normalization(model, 3)
    assert decided.normalize == "raw" and decided.layers == ("Rescaling(scale=0.007843, offset=-1)",)


def test_normalization_adapted_on_0_1_data_means_0_1():
    import keras

    norm = keras.layers.Normalization()
    norm.adapt(np.random.default_rng(0).random((20, 32, 32, 3), dtype=np.float32))
    decided = decide_normalization(_wrap(norm, keras.layers.Conv2D(4, 3)), 3)
    assert decided.normalize == "0,1" and "Normalization(mean=[0.49" in decided.reason


def test_no_preprocessing_layers_decides_nothing():
    import keras

    assert decide_normalization(_wrap(keras.layers.Conv2D(4, 3)), 3) is None
    assert decide_normalization(None, 3) is None  # a bare SavedModel: nothing to read


@pytest.mark.parametrize(("application", "normalize", "bgr"), [
    ("MobileNetV2", "-1,1", False),
    ("VGG16", "103.939,116.779,123.68/1,1,1", True),
    ("EfficientNetB0", "raw", False),  # Rescaling + Normalization inside the application
])
def test_keras_applications_nested_in_a_model(application, normalize, bgr):
    import keras

    base = getattr(keras.applications, application)(weights=None, include_top=False, input_shape=(32, 32, 3))
    decided = decide_normalization(_wrap(base), 3)
    assert (decided.normalize, decided.bgr) == (normalize, bgr), decided


def test_explicit_normalize_is_checked_against_the_model_by_value():
    import keras

    decided = decide_normalization(_wrap(keras.layers.Rescaling(1 / 255), keras.layers.Conv2D(4, 3)), 3)
    check_explicit(decided, "raw", False, force=False)
    check_explicit(decided, "0,1", False, force=True)
    for contradicting in ("0,1", "0/255", "imagenet"):  # 0/255 is 0,1 spelled as MEAN/STD
        with pytest.raises(UsageError, match=f"--normalize {contradicting} contradicts the model"):
            check_explicit(decided, contradicting, False, force=False)
    tf_mode = ModelNormalization("-1,1", False, (), "MobileNetV2 expects -1..1")
    check_explicit(tf_mode, "127.5/127.5", False, force=False)  # the same map as -1,1
    check_explicit(tf_mode, "0.5/0.5", False, force=False)
    with pytest.raises(UsageError):
        check_explicit(tf_mode, "-1,1", True, force=False)  # BGR against an RGB model: not the same
