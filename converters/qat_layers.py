"""Keras 3 layers for quantization-aware training: fake-quantized weights and trained activation ranges.

The graph these layers build holds ``FakeQuantWithMinMaxVars`` / ``…PerChannel`` ops, which the
TFLite converter recognises: it then takes every tensor's int8 parameters from them instead of
calibrating. Activations get ``scale = (max - min) / 255`` from the range tracked during training;
weights are quantized the way TFLite quantizes them (symmetric, narrow range, ``max|w| / 127``).

Importing this module imports Keras (the ``[convert]`` extra).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgeq import _lazy

keras = _lazy.keras()
ops = keras.ops

#: how slowly a tracked range follows the batches once it has settled (exponential moving average)
RANGE_DECAY = 0.99
#: smallest width of a range, so that a constant tensor still gets a valid scale
MIN_RANGE = 1e-6
#: smallest int4 weight bound (ai-edge-quantizer's, so that a zero channel gets the same scale)
INT4_MIN_BOUND = 1e-9


def fake_quant_weights(kernel: Any, axis: int | None, bits: int = 8) -> Any:
    """Fake-quantize weights as they will be stored: by default int8 as TFLite stores them (symmetric, narrow range
    ``[-127, 127]``); with ``bits=4`` as ai-edge-quantizer's ``int4-weights`` stores them (:func:`fake_quant_int4`).

    Args:
        kernel: the (BatchNorm-folded) weights.
        axis: the output-channel axis for per-channel scales, or ``None`` for one scale per tensor.
        bits: 8, or 4.
    """
    if bits == 4:
        return fake_quant_int4(kernel, axis)
    if axis is None:
        bound = ops.max(ops.abs(kernel))
    else:
        bound = ops.max(ops.abs(kernel), axis=[i for i in range(len(kernel.shape)) if i != axis])
    bound = ops.stop_gradient(ops.maximum(bound, MIN_RANGE))
    return keras.quantizers.fake_quant_with_min_max_vars(kernel, -bound, bound, num_bits=8, narrow_range=True, axis=axis)


def fake_quant_int4(kernel: Any, axis: int | None) -> Any:
    """Int4 weights exactly as ai-edge-quantizer stores them (``uniform_quantize_tensor``): symmetric, ``scale =
    max|w| / 7`` per channel (bound at least ``INT4_MIN_BOUND``), ``q = clip(round_half_even(w / scale), -8, 7)``, in float32.

    The gradient passes straight through (all weights lie inside ``[-max|w|, max|w|]``); the scale gets none.
    """
    reduce = None if axis is None else [i for i in range(len(kernel.shape)) if i != axis % len(kernel.shape)]
    bound = ops.max(ops.abs(kernel), axis=reduce, keepdims=True)
    scale = ops.stop_gradient(ops.maximum(bound, INT4_MIN_BOUND) / 7.0)
    q = ops.clip(ops.round(kernel / scale), -8.0, 7.0)  # tf.round rounds half to even, as numpy's rint
    return kernel + ops.stop_gradient(q * scale - kernel)


class RangeQuantizer(keras.layers.Layer):
    """Fake-quantizes a tensor to int8 over a range learnt from the training batches.

    In training, each batch's ``[min(x, 0), max(x, 0)]`` updates the range: the first batches are
    averaged, later ones enter an exponential moving average (decay ``RANGE_DECAY``). At inference
    and export the stored range is used; the converter turns it into the tensor's scale and zero point.
    """

    #: ``False`` passes tensors through unquantized (weight-only QAT: activations stay float)
    enabled = True

    def __init__(self, decay: float = RANGE_DECAY, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.decay = decay

    def build(self, input_shape: Any) -> None:
        self.range_min = self.add_weight(name="range_min", shape=(), initializer="zeros", trainable=False)
        self.range_max = self.add_weight(name="range_max", shape=(), initializer="ones", trainable=False)
        self.updates = self.add_weight(name="updates", shape=(), initializer="zeros", trainable=False)

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not self.enabled:
            return inputs
        if training:
            lo = ops.stop_gradient(ops.minimum(ops.min(inputs), 0.0))
            hi = ops.stop_gradient(ops.maximum(ops.max(inputs), 0.0))
            n = ops.convert_to_tensor(self.updates)
            decay = ops.minimum(self.decay, (1.0 + n) / (10.0 + n)) * ops.cast(n > 0, "float32")
            lo = decay * self.range_min + (1.0 - decay) * lo
            hi = decay * self.range_max + (1.0 - decay) * hi
            self.range_min.assign(lo)
            self.range_max.assign(hi)
            self.updates.assign(n + 1.0)
        else:
            lo, hi = self.range_min, self.range_max
        hi = ops.maximum(hi, lo + MIN_RANGE)
        return keras.quantizers.fake_quant_with_min_max_vars(inputs, lo, hi, num_bits=8, narrow_range=False)

    def trained_range(self) -> tuple[float, float]:
        """The ``(min, max)`` the converter will quantize this tensor with."""
        lo = float(np.asarray(self.range_min))
        return lo, max(float(np.asarray(self.range_max)), lo + MIN_RANGE)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "decay": self.decay}


_ACTIVATIONS = {"linear": None, "relu": ops.relu, "relu6": ops.relu6}


class QuantizedConv(keras.layers.Layer):
    """A Conv2D, DepthwiseConv2D, SeparableConv2D or Dense with its BatchNorm folded in, for QAT.

    The weights are folded as the TFLite converter folds them (``w * gamma / sqrt(var + eps)``,
    ``beta + (b - mean) * gamma / sqrt(var + eps)``, frozen moving statistics), then
    fake-quantized: per output channel for convolutions, per tensor for Dense. A ReLU/ReLU6
    that follows is applied before the output's tracked range, so the converter fuses it;
    a softmax is applied after it (int8 softmax has a fixed output scale).

    Args:
        kind: ``conv``, ``depthwise``, ``separable`` or ``dense``.
        source: the original layer (its config and weights are copied).
        batch_norm: the BatchNormalization layer folded into this one, or ``None``.
        activation: ``linear``, ``relu``, ``relu6`` or ``softmax``.
        quantize_output: whether the output gets its own tracked range (see ``LayerStep.output_range``).
    """

    #: 8, or 4 as ai-edge-quantizer's ``int4-weights`` stores weights: Dense per output channel too, and
    #: depthwise kernels left float (that mode does not quantize them)
    weight_bits = 8

    def __init__(self, kind: str, source: Any, batch_norm: Any = None, activation: str = "linear",
                 quantize_output: bool = True, **kwargs: Any) -> None:
        super().__init__(name=source.name, **kwargs)
        self.kind = kind
        self.activation = activation
        self.conv_args = {}
        if kind != "dense":
            self.conv_args = {"strides": source.strides, "padding": source.padding, "dilation_rate": source.dilation_rate}
        weights = {w.path.split("/")[-1]: np.asarray(w) for w in source.weights}
        self._initial = {k: weights[k] for k in ("kernel", "depthwise_kernel", "pointwise_kernel", "bias") if k in weights}
        self._bn = None
        if batch_norm is not None:
            bn = {w.path.split("/")[-1]: np.asarray(w) for w in batch_norm.weights}
            channels = bn["moving_mean"].shape[0]
            self._bn = {"gamma": bn.get("gamma", np.ones(channels, np.float32)), "beta": bn.get("beta", np.zeros(channels, np.float32)),
                        "moving_mean": bn["moving_mean"], "moving_variance": bn["moving_variance"]}
            self.epsilon = float(batch_norm.epsilon)
        self.output_range = RangeQuantizer(name=f"{source.name}_range") if quantize_output else None
        self.inner_range = RangeQuantizer(name=f"{source.name}_depthwise_range") if kind == "separable" else None

    def _variable(self, name: str, value: np.ndarray, trainable: bool = True) -> Any:
        return self.add_weight(name=name, shape=value.shape, initializer=lambda shape, dtype=None: value.astype("float32"),
                               trainable=trainable)

    def build(self, input_shape: Any) -> None:
        self.weights_ = {k: self._variable(k, v) for k, v in self._initial.items()}
        if self._bn is not None:
            for k, v in self._bn.items():
                self.weights_[k] = self._variable(k, v, trainable=k in ("gamma", "beta"))
        for quantizer in (self.output_range, self.inner_range):
            if quantizer is not None:
                quantizer.build(None)

    def folded(self) -> tuple[Any, Any]:
        """``(kernel, bias)`` with the BatchNorm folded in; the kernel is the one whose output channels it scales."""
        w = self.weights_
        kernel = w["pointwise_kernel"] if self.kind == "separable" else w["kernel"]
        bias = w.get("bias")
        if self._bn is None:
            return kernel, bias
        factor = w["gamma"] / ops.sqrt(w["moving_variance"] + self.epsilon)
        shift = w["beta"] - w["moving_mean"] * factor
        if self.kind == "depthwise":  # output channel c * multiplier + m scales kernel[..., c, m]
            kernel = kernel * ops.reshape(factor, kernel.shape[2:])
        else:
            kernel = kernel * factor
        return kernel, shift if bias is None else shift + bias * factor

    def call(self, inputs: Any, training: bool = False) -> Any:
        kernel, bias = self.folded()
        bits = self.weight_bits
        depthwise_fq = _depthwise_fake_quant if bits == 8 else (lambda k: k)
        if self.kind == "dense":
            outputs = ops.matmul(inputs, fake_quant_weights(kernel, None if bits == 8 else 1, bits))
        elif self.kind == "conv":
            outputs = ops.conv(inputs, fake_quant_weights(kernel, 3, bits), **self.conv_args)
        elif self.kind == "depthwise":
            outputs = ops.depthwise_conv(inputs, depthwise_fq(kernel), **self.conv_args)
        else:
            hidden = ops.depthwise_conv(inputs, depthwise_fq(self.weights_["depthwise_kernel"]), **self.conv_args)
            hidden = self.inner_range(hidden, training=training)
            outputs = ops.conv(hidden, fake_quant_weights(kernel, 3, bits))
        if bias is not None:
            outputs = outputs + bias
        act = _ACTIVATIONS.get(self.activation)
        if act is not None:
            outputs = act(outputs)
        if self.output_range is not None:
            outputs = self.output_range(outputs, training=training)
        return ops.softmax(outputs, axis=-1) if self.activation == "softmax" else outputs


def _depthwise_fake_quant(kernel: Any) -> Any:
    """Depthwise kernels ``(h, w, in, multiplier)`` are quantized per output channel ``in * multiplier``."""
    h, w, c, m = kernel.shape
    return ops.reshape(fake_quant_weights(ops.reshape(kernel, (h, w, c * m)), 2), (h, w, c, m))


class Merged(keras.layers.Layer):
    """Stands in for a BatchNormalization or ReLU merged into the layer before it: passes its input through."""

    def call(self, inputs: Any, **kwargs: Any) -> Any:
        return inputs


#: int8 output ranges TFLite fixes for these activations: LOGISTIC scale 1/256 zero point -128, TANH 1/128 and 0
FIXED_RANGES = {"sigmoid": (0.0, 255 / 256), "tanh": (-1.0, 127 / 128)}
#: activations with an int8 TFLite kernel (besides those fused into the layer before): ``name -> function``
QUANTIZED_ACTIVATIONS = {
    "sigmoid": ops.sigmoid, "tanh": ops.tanh, "silu": ops.silu, "hard_silu": ops.hard_silu, "leaky_relu": ops.leaky_relu,
}


def fake_quant_fixed(inputs: Any, activation: str) -> Any:
    """Fake-quantize the output of ``sigmoid``/``tanh`` to the int8 range TFLite fixes for it (:data:`FIXED_RANGES`)."""
    lo, hi = FIXED_RANGES[activation]
    return keras.quantizers.fake_quant_with_min_max_vars(inputs, lo, hi, num_bits=8, narrow_range=False)


class QuantizedActivation(keras.layers.Layer):
    """An activation with an int8 kernel of its own, for QAT: its input comes quantized, its output is fake-quantized.

    ``sigmoid``/``tanh`` outputs take the fixed ranges TFLite's LOGISTIC/TANH kernels use; the others
    (``silu``, ``hard_silu``, ``leaky_relu``) get a tracked range. ``silu`` is ``x * sigmoid(x)``, which the
    converter turns into LOGISTIC then MUL, so the sigmoid is fake-quantized on its fixed range in between.

    Args:
        activation: a key of :data:`QUANTIZED_ACTIVATIONS`.
    """

    def __init__(self, activation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activation
        self.output_range = None if activation in FIXED_RANGES else RangeQuantizer(name=f"{self.name}_range")

    def build(self, input_shape: Any) -> None:
        if self.output_range is not None:
            self.output_range.build(None)

    #: ``False``: the activation runs in float (int4 weight-only QAT, whose export keeps activations float)
    quantize = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        if not self.quantize:
            return QUANTIZED_ACTIVATIONS[self.activation](inputs)
        if self.activation in FIXED_RANGES:
            return fake_quant_fixed(QUANTIZED_ACTIVATIONS[self.activation](inputs), self.activation)
        if self.activation == "silu":
            outputs = inputs * fake_quant_fixed(ops.sigmoid(inputs), "sigmoid")
        else:
            outputs = QUANTIZED_ACTIVATIONS[self.activation](inputs)
        return self.output_range(outputs, training=training)


class QuantizedPReLU(keras.layers.Layer):
    """A PReLU for QAT: ``alpha`` rounded as TFLite stores it (int8, one symmetric scale), output range tracked.

    Args:
        source: the PReLU layer (its ``alpha`` and ``shared_axes`` are copied).
    """

    def __init__(self, source: Any, **kwargs: Any) -> None:
        super().__init__(name=source.name, **kwargs)
        self._alpha = np.asarray(source.alpha)
        self.output_range = RangeQuantizer(name=f"{source.name}_range")

    def build(self, input_shape: Any) -> None:
        value = self._alpha.astype("float32")
        self.alpha = self.add_weight(name="alpha", shape=value.shape, initializer=lambda shape, dtype=None: value)
        self.output_range.build(None)

    #: ``False``: ``alpha`` stays float (int4 weight-only QAT stores PReLU's alpha as float)
    quantize = True

    def call(self, inputs: Any, training: bool = False) -> Any:
        # Keras's own formula, which the converter matches to one PRELU op
        alpha = _round_to_int8_grid(self.alpha) if self.quantize else self.alpha
        outputs = ops.relu(inputs) + -alpha * ops.relu(-inputs)
        return self.output_range(outputs, training=training)


def _round_to_int8_grid(values: Any) -> Any:
    """``values`` rounded to the int8 grid TFLite stores them on (one symmetric scale ``max|v| / 127``), with a
    straight-through gradient. Plain ops, not a FakeQuant op: the converter folds them into a constant that it
    quantizes itself (with a FakeQuant op on it, it leaves PRELU in float)."""
    scale = ops.stop_gradient(ops.maximum(ops.max(ops.abs(values)), MIN_RANGE)) / 127.0
    return values + ops.stop_gradient(ops.round(values / scale) * scale - values)


class QuantizedAffine(keras.layers.Layer):
    """A per-channel ``x * factor + shift`` for QAT, run as a 1x1 depthwise convolution with int8 per-channel weights.

    Stands for a BatchNormalization that cannot be folded into the layer before it (``factor = gamma /
    sqrt(var + eps)``, ``shift = beta - mean * factor``; ``gamma``/``beta`` train, the moving statistics are
    frozen), a ``Rescaling`` or a ``Normalization``. Inputs of rank 2 or 3 are reshaped to rank 4 around it.
    Each channel's factor is its own int8 weight (``±127`` at scale ``|factor| / 127``), so only the
    output's tracked range quantizes anything.

    Args:
        source: the BatchNormalization, Rescaling or Normalization layer.
    """

    def __init__(self, source: Any, **kwargs: Any) -> None:
        super().__init__(name=source.name, **kwargs)
        self._initial = _affine_parameters(source)
        self.epsilon = float(source.epsilon) if type(source).__name__ == "BatchNormalization" else None
        self.output_range = RangeQuantizer(name=f"{source.name}_range")

    def build(self, input_shape: Any) -> None:
        channels = int(input_shape[-1])
        self.weights_ = {}
        for k, v in self._initial.items():
            value = np.broadcast_to(np.asarray(v, np.float32).reshape(-1), (channels,)).copy()
            self.weights_[k] = self.add_weight(name=k, shape=value.shape, trainable=k in ("gamma", "beta"),
                                               initializer=lambda shape, dtype=None, value=value: value)
        self.output_range.build(None)

    def affine(self) -> tuple[Any, Any]:
        """``(factor, shift)``, one value per channel."""
        w = self.weights_
        if "gamma" not in w:
            return w["factor"], w["shift"]
        factor = w["gamma"] / ops.sqrt(w["moving_variance"] + self.epsilon)
        return factor, w["beta"] - w["moving_mean"] * factor

    #: ``False``: the factors stay float (int4 weight-only QAT, whose export keeps depthwise kernels float)
    quantize = True

    def call(self, inputs: Any, training: bool = False, mask: Any = None) -> Any:
        factor, shift = self.affine()
        rank = len(inputs.shape)
        x = inputs if rank == 4 else ops.reshape(inputs, (-1, *([1] * (4 - rank)), *inputs.shape[1:]))
        kernel = ops.reshape(factor, (1, 1, -1, 1))
        kernel = _depthwise_fake_quant(kernel) if self.quantize else kernel
        outputs = ops.depthwise_conv(x, kernel, strides=1, padding="valid") + shift
        outputs = self.output_range(outputs, training=training)
        return outputs if rank == 4 else ops.reshape(outputs, (-1, *inputs.shape[1:]))


def _affine_parameters(source: Any) -> dict[str, Any]:
    """The per-channel parameters of a BatchNormalization (``gamma``, ``beta``, moving statistics), or the
    ``factor``/``shift`` of a Rescaling or Normalization."""
    cls = type(source).__name__
    if cls == "BatchNormalization":
        bn = {w.path.split("/")[-1]: np.asarray(w) for w in source.weights}
        channels = bn["moving_mean"].shape[0]
        return {"gamma": bn.get("gamma", np.ones(channels, np.float32)), "beta": bn.get("beta", np.zeros(channels, np.float32)),
                "moving_mean": bn["moving_mean"], "moving_variance": bn["moving_variance"]}
    if cls == "Rescaling":
        return {"factor": np.asarray(source.scale, np.float32), "shift": np.asarray(source.offset, np.float32)}
    mean, variance = np.asarray(source.mean, np.float32), np.asarray(source.variance, np.float32)
    factor = 1.0 / np.maximum(np.sqrt(variance), keras.backend.epsilon())
    return {"factor": factor, "shift": -mean * factor}


class QuantizedConv1D(QuantizedConv):
    """A Conv1D for QAT: run as the Conv2D over a height-1 image that TFLite makes of it (same arguments as
    :class:`QuantizedConv`, whose ``kind`` is ``conv1d`` here)."""

    def __init__(self, kind: str, source: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__("conv", source, *args, **kwargs)
        self.conv_args = {"strides": (1, *source.strides), "padding": source.padding,
                          "dilation_rate": (1, *source.dilation_rate)}

    def folded(self) -> tuple[Any, Any]:
        kernel, bias = super().folded()
        return ops.expand_dims(kernel, 0), bias

    def call(self, inputs: Any, training: bool = False) -> Any:
        return ops.squeeze(super().call(ops.expand_dims(inputs, 1), training=training), 1)
