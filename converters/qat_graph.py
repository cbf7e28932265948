"""The QAT plan: what happens to each layer of a Keras model, decided (and checked) before training.

Each layer class has a role in a registry:

* ``quantize`` — Conv2D, DepthwiseConv2D, SeparableConv2D, Dense: replaced by a
  :class:`~edgeq.converters.qat_layers.QuantizedConv` with fake-quantized weights;
* ``fold`` / ``fuse`` — a BatchNormalization, then a ReLU/ReLU6, that directly follow one of
  those (and feed nothing else) are folded/fused into it, as the TFLite converter does;
* ``range`` — layers computing new values (Add, Multiply, Concatenate, average pooling, a standalone
  ReLU/ReLU6, LeakyReLU): their output gets a :class:`~edgeq.converters.qat_layers.RangeQuantizer`;
* ``keep`` — layers whose int8 kernel keeps the input's scale (max pooling, Flatten, Reshape, Dropout, UpSampling…);
* ``fixed`` — softmax, whose int8 output scale is fixed (1/256);
* ``activation`` — a standalone sigmoid, tanh, swish (silu), hard swish or leaky ReLU: a
  :class:`~edgeq.converters.qat_layers.QuantizedActivation` (fixed output range for sigmoid/tanh, tracked
  for the others); the same activation given as a weighted layer's ``activation=`` follows it (``then``);
* ``affine`` — a BatchNormalization that cannot be folded (e.g. after an activation), a ``Rescaling`` or a
  ``Normalization``: a per-channel :class:`~edgeq.converters.qat_layers.QuantizedAffine` with its own output range;
* ``prelu`` — a PReLU: :class:`~edgeq.converters.qat_layers.QuantizedPReLU` (int8 ``alpha``, tracked output range).

Operations written on Keras tensors (``keras.activations.sigmoid(x)``, ``x * y``) take the role of the
layer they stand for (:data:`OPERATIONS`). Any other layer or operation makes :func:`plan_model` report
it by name, before any training starts.
This module does not import Keras; :func:`build_qat_model` does.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from edgeq.errors import ConversionError, ModelError

#: Keras layer class -> the kind of weighted op it is
WEIGHTED = {"Conv2D": "conv", "DepthwiseConv2D": "depthwise", "SeparableConv2D": "separable", "Dense": "dense",
            "Conv1D": "conv1d"}
#: Keras layer class -> role (weighted layers and BatchNormalization are decided from the graph)
ROLES = {
    "InputLayer": "keep",
    "MaxPooling2D": "keep",
    "GlobalMaxPooling2D": "keep",
    "Flatten": "keep",
    "Reshape": "keep",
    "Dropout": "keep",
    "SpatialDropout2D": "keep",
    "ZeroPadding2D": "keep",
    "Identity": "keep",
    "Add": "range",
    "Concatenate": "range",
    "AveragePooling2D": "range",
    "GlobalAveragePooling2D": "range",
    "ReLU": "range",
    "Activation": "range",
    "Softmax": "fixed",
    "Multiply": "range",
    "LeakyReLU": "range",
    "AveragePooling1D": "range",
    "GlobalAveragePooling1D": "range",
    "MaxPooling1D": "keep",
    "GlobalMaxPooling1D": "keep",
    "UpSampling1D": "keep",
    "ZeroPadding1D": "keep",
    "SpatialDropout1D": "keep",
    "UpSampling2D": "keep",
    "PReLU": "prelu",
    "Rescaling": "affine",
    "Normalization": "affine",
}
SUPPORTED = sorted({*WEIGHTED, "BatchNormalization", *ROLES} - {"InputLayer", "Identity"})
_RELUS = ("relu", "relu6")
#: activations run by their own int8 kernel after the layer (must match ``qat_layers.QUANTIZED_ACTIVATIONS``)
_OWN_KERNEL = ("sigmoid", "tanh", "silu", "hard_silu", "leaky_relu")
#: operations on Keras tensors (``keras.activations.sigmoid(x)``, ``x + y``) -> role, or the activation they are
OPERATIONS = {"Sigmoid": "sigmoid", "Tanh": "tanh", "Silu": "silu", "ReLU": "range", "Relu6": "range", "Add": "range",
              "Multiply": "range"}


@dataclass(frozen=True)
class LayerStep:
    """What QAT does with one layer.

    Attributes:
        role: ``quantize``, ``fold``, ``fuse``, ``range``, ``keep``, ``fixed``, ``activation``, ``affine`` or
            ``prelu`` (see the module docstring).
        kind: for ``quantize``: ``conv``, ``depthwise``, ``separable`` or ``dense``.
        batch_norm: for ``quantize``: the BatchNormalization folded into it.
        activation: for ``quantize``: the activation applied in it (``linear``, ``relu``, ``relu6``, ``softmax``);
            for ``activation``: the one the layer or operation applies (``sigmoid``, ``tanh``, ``silu``…).
        into: for ``fold``/``fuse``: the layer it was merged into.
        then: for ``quantize``: an activation with its own int8 kernel (sigmoid, tanh, silu, hard_silu,
            leaky_relu) applied after the layer's output range, as a ``QuantizedActivation``.
        output_range: for ``quantize``/``range``: whether the output gets its own tracked range; not
            when it only feeds a Concatenate (int8 concatenation writes its inputs at its own scale) or
            a ReLU/ReLU6 the converter fuses into it.
    """

    role: str
    kind: str | None = None
    batch_norm: str | None = None
    activation: str = "linear"
    into: str | None = None
    output_range: bool = True
    then: str | None = None


@dataclass
class QatPlan:
    """The step for every layer (by name), and the layers QAT cannot handle with the reason."""

    steps: dict[str, LayerStep] = field(default_factory=dict)
    unsupported: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def quantized(self) -> list[str]:
        return [name for name, s in self.steps.items() if s.role == "quantize"]

    def to_dict(self) -> dict[str, Any]:
        return {name: {k: v for k, v in vars(s).items() if v is not None} for name, s in self.steps.items()}


def activation_name(layer: Any) -> str:
    """The activation a layer applies: ``linear``, ``relu``, ``relu6``, ``softmax`` or another Keras name."""
    cls = type(layer).__name__
    if cls == "ReLU":
        plain = not layer.negative_slope and not layer.threshold
        if plain and layer.max_value is None:
            return "relu"
        return "relu6" if plain and float(layer.max_value) == 6.0 else "relu(custom)"
    if cls == "Softmax":
        return "softmax"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return "linear"
    return getattr(fn, "__name__", type(fn).__name__)


def _graph_nodes(functional: Any) -> dict[str, list[Any]]:
    """The nodes of this model's graph, by layer name (a layer can also have nodes in other graphs)."""
    nodes: dict[str, list[Any]] = {}
    for depth_nodes in functional._nodes_by_depth.values():
        for node in depth_nodes:
            if node.operation is not None:
                nodes.setdefault(node.operation.name, []).append(node)
    return nodes


def as_functional(model: Any) -> Any:
    """A Functional view of a Sequential model (same layers); Functional models as they are.

    Raises:
        ModelError: a subclassed model, or a Sequential without a defined input.
    """
    keras = _keras()
    if isinstance(model, keras.Sequential):
        try:
            inputs, outputs = model.inputs, model.outputs
        except (AttributeError, ValueError):
            inputs = None
        if not inputs:
            raise ModelError(f"Sequential model {model.name!r} has no defined input; build it with keras.Input(shape) first")
        return keras.Model(inputs, outputs, name=model.name)
    if not hasattr(model, "_nodes_by_depth"):
        raise ModelError(
            f"QAT needs a Sequential or Functional Keras model; {model.name!r} is a subclassed "
            f"{type(model).__name__}. Rebuild it with the Functional API, or use edgeq convert (post-training int8)"
        )
    return model


def plan_model(model: Any) -> QatPlan:
    """Decide the role of every layer; unsupported layers are listed in ``unsupported``, nothing raises."""
    functional = as_functional(model)
    layers = {layer.name: layer for layer in functional.layers}
    nodes = _graph_nodes(functional)
    consumers: dict[str, list[str]] = {name: [] for name in layers}
    for name, layer_nodes in nodes.items():
        for parent in {t._keras_history.operation.name for t in layer_nodes[0].input_tensors}:
            consumers.setdefault(parent, []).append(name)
    outputs = {t._keras_history.operation.name for t in functional.outputs}
    plan = QatPlan()

    def only_consumer(name: str) -> Any:
        users = consumers.get(name, [])
        return layers.get(users[0]) if len(users) == 1 and name not in outputs else None

    for name, layer in layers.items():
        if name in plan.steps:
            continue
        cls = type(layer).__name__
        if len(nodes.get(name, [])) > 1:
            plan.unsupported.append((name, cls, "the layer is used more than once (shared weights)"))
        elif hasattr(layer, "layers") and cls not in ROLES:
            plan.unsupported.append((name, cls, "a nested model; flatten it into one Functional model"))
        elif cls in WEIGHTED:
            _plan_weighted(plan, layer, only_consumer)
        elif cls in ("BatchNormalization", "Normalization"):
            if not _over_channels(layer):
                plan.unsupported.append((name, cls, f"normalizes over axis {layer.axis}, not the last (channel) axis"))
            elif getattr(layer, "invert", False):
                plan.unsupported.append((name, cls, "invert=True (undoes a normalization); use a Rescaling"))
            else:  # a BatchNormalization not folded into the layer before it: a per-channel affine
                plan.steps[name] = LayerStep("affine")
        elif cls in ("ReLU", "Activation") or cls == "Softmax":
            act = activation_name(layer)
            if act in _RELUS:
                plan.steps[name] = LayerStep("range")
            elif act == "softmax":
                plan.steps[name] = LayerStep("fixed")
            elif act == "linear":
                plan.steps[name] = LayerStep("keep")
            elif act in _OWN_KERNEL:
                plan.steps[name] = LayerStep("activation", activation=act)
            else:
                supported = ", ".join((*_RELUS, "softmax", *_OWN_KERNEL))
                plan.unsupported.append((name, cls, f"activation {act!r} (supported: {supported})"))
        elif cls in ROLES:
            plan.steps[name] = LayerStep(ROLES[cls])
        else:
            plan.unsupported.append((name, cls, "no fake-quantized version of this layer"))
    for name in nodes.keys() - layers.keys():  # keras.ops calls on Keras tensors: graph nodes that are not layers
        cls = type(nodes[name][0].operation).__name__
        if cls in ("Add", "Multiply") and len(nodes[name][0].input_tensors) < 2:
            plan.unsupported.append((name, cls, "an operation between a Keras tensor and a constant (such as `x + 3.0`); "
                                     "write it as a Rescaling layer"))
        elif OPERATIONS.get(cls) == "range":
            plan.steps[name] = LayerStep("range")
        elif cls in OPERATIONS:
            plan.steps[name] = LayerStep("activation", activation=OPERATIONS[cls])
        else:
            plan.unsupported.append((name, cls, "an operation on Keras tensors (such as `x ** 2`), not a layer; write it as "
                                     f"a layer (supported operations: {', '.join(sorted(OPERATIONS))})"))
    for name, step in plan.steps.items():
        nxt = only_consumer(name) if step.role in ("quantize", "range") and step.then is None else None
        if nxt is None:
            continue
        into_concat = type(nxt).__name__ == "Concatenate"
        into_relu = step.role == "range" and plan.steps.get(nxt.name, LayerStep("keep")).role == "range" and \
            activation_name(nxt) in _RELUS and type(nxt).__name__ in ("ReLU", "Activation")
        if into_concat or into_relu:
            plan.steps[name] = dataclasses.replace(step, output_range=False)
    return plan


def _over_channels(layer: Any) -> bool:
    """Whether a BatchNormalization/Normalization has one value per channel (its axis is the last)."""
    rank = len(layer.input.shape)
    axes = layer.axis if isinstance(layer.axis, (list, tuple)) else [layer.axis]
    return [a % rank for a in axes if a is not None] == [rank - 1]


def _plan_weighted(plan: QatPlan, layer: Any, only_consumer: Any) -> None:
    name, cls = layer.name, type(layer).__name__
    kind = WEIGHTED[cls]
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        plan.unsupported.append((name, cls, "channels_first data format (TFLite is channels_last)"))
        return
    if kind in ("conv", "conv1d") and getattr(layer, "groups", 1) != 1:
        plan.unsupported.append((name, cls, f"grouped convolution (groups={layer.groups})"))
        return
    if kind != "dense" and any(d != 1 for d in layer.dilation_rate):
        plan.unsupported.append((name, cls, f"dilated convolution (dilation_rate={tuple(layer.dilation_rate)}): trained "
                                 "with space-to-batch ops, which the converter then leaves in float"))
        return
    if kind == "conv1d" and layer.padding == "causal":
        plan.unsupported.append((name, cls, "causal padding; pad with ZeroPadding1D and use padding='valid'"))
        return
    act = activation_name(layer)
    if act not in ("linear", *_RELUS, *_OWN_KERNEL) and not (act == "softmax" and kind == "dense"):
        plan.unsupported.append((name, cls, f"activation {act!r} (supported: relu, relu6, {', '.join(_OWN_KERNEL)}; "
                                 "softmax on Dense)"))
        return
    if act in _OWN_KERNEL:
        plan.steps[name] = LayerStep("quantize", kind=kind, then=act)
        return
    batch_norm = None
    nxt = only_consumer(name) if act == "linear" else None
    if nxt is not None and type(nxt).__name__ == "BatchNormalization" and nxt.axis in (-1, len(nxt.input.shape) - 1):
        batch_norm = nxt.name
        plan.steps[nxt.name] = LayerStep("fold", into=name)
        nxt = only_consumer(nxt.name)
    if act == "linear" and nxt is not None and type(nxt).__name__ in ("ReLU", "Activation") and activation_name(nxt) in _RELUS:
        act = activation_name(nxt)
        plan.steps[nxt.name] = LayerStep("fuse", into=name)
    plan.steps[name] = LayerStep("quantize", kind=kind, batch_norm=batch_norm, activation=act)


def check_plan(plan: QatPlan, model: Any) -> None:
    """Raise when QAT cannot run on the model: unsupported layers (named), or nothing to train.

    Raises:
        ConversionError: a layer cannot be fake-quantized.
        ModelError: the model has no trainable Conv/Dense layer.
    """
    if plan.unsupported:
        listed = "; ".join(f"{name!r} ({cls}): {why}" for name, cls, why in plan.unsupported)
        raise ConversionError(
            f"QAT cannot fake-quantize {len(plan.unsupported)} layer(s): {listed}. Supported layers: {', '.join(SUPPORTED)}; "
            "change the model, or use edgeq convert (post-training int8)"
        )
    functional = as_functional(model)
    trainable = [n for n in plan.quantized if functional.get_layer(n).trainable and functional.get_layer(n).trainable_weights]
    if not trainable:
        raise ModelError(
            f"model {model.name!r} has no trainable Conv2D/DepthwiseConv2D/SeparableConv2D/Dense layer, so QAT has "
            "nothing to train; unfreeze some layers, or use edgeq convert (post-training int8)"
        )


def build_qat_model(model: Any, plan: QatPlan) -> Any:
    """Rebuild ``model`` with the plan's fake-quantized layers (the original model is not changed).

    Returns:
        A Functional Keras model with the same inputs and outputs.
    """
    keras = _keras()
    from edgeq.converters.qat_layers import (Merged, QuantizedActivation, QuantizedAffine, QuantizedConv, QuantizedConv1D,
                                             QuantizedPReLU, RangeQuantizer)

    functional = as_functional(model)
    layers = {layer.name: layer for layer in functional.layers}
    quantized_inputs: dict[int, Any] = {}

    def clone(layer: Any) -> Any:
        step = plan.steps[layer.name]
        if step.role == "quantize":
            bn = layers[step.batch_norm] if step.batch_norm else None
            conv_class = QuantizedConv1D if step.kind == "conv1d" else QuantizedConv
            new = conv_class(step.kind, layer, bn, step.activation, quantize_output=step.output_range)
            new.trainable = layer.trainable
            return new
        if step.role in ("fold", "fuse"):
            return Merged(name=layer.name)
        if not isinstance(layer, keras.layers.Layer) and step.role == "range":
            return layer  # an operation on Keras tensors: called again on the new tensors
        if step.role == "affine":
            return QuantizedAffine(layer)
        if step.role == "activation":
            return QuantizedActivation(step.activation, name=layer.name)
        if step.role == "prelu":
            return QuantizedPReLU(layer)
        return layer.__class__.from_config(layer.get_config())

    def quantize_input(value: Any) -> Any:
        history = getattr(value, "_keras_history", None)
        if history is None or type(history.operation).__name__ != "InputLayer":
            return value
        if id(value) not in quantized_inputs:
            quantized_inputs[id(value)] = RangeQuantizer(name=f"{history.operation.name}_range")(value)
        return quantized_inputs[id(value)]

    def call(layer: Any, *args: Any, **kwargs: Any) -> Any:
        args, kwargs = keras.tree.map_structure(quantize_input, (args, kwargs))
        outputs = layer(*args, **kwargs)
        step = plan.steps[layer.name]
        if step.role == "range" and step.output_range:
            outputs = RangeQuantizer(name=f"{layer.name}_range")(outputs)
        if step.then is not None:
            outputs = QuantizedActivation(step.then, name=f"{layer.name}_{step.then}")(outputs)
        return outputs

    return keras.models.clone_model(functional, clone_function=clone, call_function=call)


def input_layer_names(model: Any) -> list[str]:
    """Names of the model's input layers, in input order (their ranges are ``<name>_range``)."""
    return [t._keras_history.operation.name for t in as_functional(model).inputs]


def trained_ranges(qat_model: Any) -> dict[str, tuple[float, float]]:
    """Every tracked range of a QAT model, by quantizer name: ``(min, max)``."""
    from edgeq.converters.qat_layers import RangeQuantizer

    ranges: dict[str, tuple[float, float]] = {}
    for layer in qat_model.layers:
        quantizers = [layer] if isinstance(layer, RangeQuantizer) else []
        quantizers += [q for q in (getattr(layer, "inner_range", None), getattr(layer, "output_range", None))
                       if isinstance(q, RangeQuantizer)]
        for q in quantizers:
            ranges[q.name] = q.trained_range()
    return ranges


def _keras() -> Any:
    from edgeq import _lazy

    return _lazy.keras()
