"""Make ``cnn64_int8.tflite``: a tiny 64x64x1 CNN (2 convolutions, pooling, dense 10), full int8, int8 IO.

The float-input row of ``benchmarks/run.py`` (section ``speed``) times ``Model.predict(float array)`` on it, where
edgeq's own per-call work is a large share of an inference. Random weights (seed 0), calibrated on 8 seeded
uniform [0, 1] inputs. Needs TensorFlow: ``python benchmarks/models/make_cnn64.py``.
"""

from pathlib import Path

import numpy as np


def main() -> None:
    import tempfile

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    inp = keras.Input((64, 64, 1))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inp)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    net = keras.Model(inp, keras.layers.Dense(10)(x))
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        net.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([rng.uniform(0, 1, (1, 64, 64, 1)).astype(np.float32)] for _ in range(8))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = converter.inference_output_type = tf.int8
        Path(__file__).with_name("cnn64_int8.tflite").write_bytes(converter.convert())


if __name__ == "__main__":
    main()
