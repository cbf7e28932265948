"""The checks of ``edgeq._flatbuffer.parse`` (reader and ``_model_checks``): each corruption becomes one ``ModelError`` naming it.

Every case edits a real model (the bundled sample, or control-flow models built with TensorFlow) with
LiteRT's flatbuffer object API, so the rest of the file stays valid and only the named check can fire.
Each of these corruptions crashed, hung or wrongly ran LiteRT 2.3 in the fuzz campaign, or is a value a
kernel trusts (see benchmarks/fuzz.py); valid models of every kind the fixtures make must still pass.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from edgeq._flatbuffer import parse
from edgeq._model_checks import MAX_WINDOW
from edgeq.cli import main
from edgeq.errors import ModelError

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "fashion_mnist" / "model_int8.tflite"
# the sample's graph: 0 CONV_2D (0, 11, 10) -> 12; 1 MAX_POOL_2D 12 -> 13; 2 DEPTHWISE_CONV_2D (13, 9, 8) -> 14;
# 3 CONV_2D (14, 7, 6) -> 15; 4 MAX_POOL_2D 15 -> 16; 5 SHAPE; 6 STRIDED_SLICE (17, 1, 2, 2) -> 18; 7 PACK;
# 8 RESHAPE (16, 19) -> 20; 9 FULLY_CONNECTED (20, 5, 4) -> 21; 10 SOFTMAX 21 -> 22


def rejected(data: bytes, *needles: str) -> str:
    with pytest.raises(ModelError) as info:
        parse(data, "m.tflite")
    message = str(info.value)
    assert message.startswith("m.tflite is a corrupt TFLite model: "), message
    for needle in needles:
        assert needle in message, message
    return message


def sg0(m):  # type: ignore[no-untyped-def]
    return m.subgraphs[0]


def set_quant(index: int, **fields):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        for key, value in fields.items():
            setattr(sg0(m).tensors[index].quantization, key, value)
    return change


# ------------------------------------------------------------------------------------ quantization
@pytest.mark.parametrize("change, needles", [
    (set_quant(12, zeroPoint=[200]), ["tensor 12", "zero point of 200, outside the INT8 range -128..127"]),
    (set_quant(13, scale=[math.nan]), ["tensor 13", "scale of nan; scales must be finite and positive"]),
    (set_quant(13, scale=[0.0]), ["scale of 0.0"]),
    (set_quant(13, scale=[-0.5]), ["scale of -0.5"]),
    (set_quant(13, scale=[math.inf]), ["scale of inf"]),
    (set_quant(11, scale=[0.1] * 15, zeroPoint=[0] * 15), ["tensor 11", "15 per-channel scales but dimension 0",
                                                           "has 16 channels"]),
    (set_quant(11, zeroPoint=[0] * 15), ["16 quantization scales but 15 zero points"]),
    (set_quant(9, quantizedDimension=4), ["quantized_dimension 4 for a shape of rank 4"]),
    (set_quant(11, scale=[0.1] * 15 + [math.nan]), ["tensor 11", "scale of nan"]),  # per-channel values
    (set_quant(9, zeroPoint=[0] * 15 + [-300]), ["tensor 9", "zero point of -300, outside the INT8 range"]),
    (set_quant(11, zeroPoint=[3] + [0] * 15), ["operator 0 (CONV_2D)", "weights (tensor 11) with zero points [3,",
                                               "symmetric"]),
])
def test_quantization_parameters(edit, change, needles):
    rejected(edit(SAMPLE, change), *needles)


# ---------------------------------------------------------------------------------------- opcodes
def test_opcode_version_and_codes(edit):
    def version(m):  # type: ignore[no-untyped-def]
        m.operatorCodes[0].version = 0

    def codes(m):  # type: ignore[no-untyped-def]
        m.operatorCodes[0].deprecatedBuiltinCode = 126

    rejected(edit(SAMPLE, version), "opcode 0 has version 0")
    rejected(edit(SAMPLE, codes), "opcode 0 has inconsistent builtin codes")


# -------------------------------------------------------------------------------- operator tensors
def op_io(index: int, inputs=None, outputs=None):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        op = sg0(m).operators[index]
        op.inputs = op.inputs if inputs is None else inputs
        op.outputs = op.outputs if outputs is None else outputs
    return change


def swap_ops(m):  # type: ignore[no-untyped-def]
    ops = sg0(m).operators
    ops[1], ops[2] = ops[2], ops[1]


def drop_last_op(m):  # type: ignore[no-untyped-def]
    sg0(m).operators.pop()


@pytest.mark.parametrize("change, needles", [
    (op_io(6, inputs=[17, 1, 2]), ["operator 6 (STRIDED_SLICE)", "has 3 inputs", "needs at least 4"]),
    (op_io(1, inputs=[-1]), ["operator 1 (MAX_POOL_2D)", "no tensor for its required input 0"]),
    (op_io(10, outputs=[-1]), ["operator 10 (SOFTMAX)", "missing (-1) output"]),
    (op_io(9, inputs=[20, 5, 40]), ["operator 9 (FULLY_CONNECTED)", "uses tensor 40 of 23"]),
    (swap_ops, ["operator 1 (DEPTHWISE_CONV_2D)", "reads tensor 13", "before any operator writes it"]),
    (op_io(1, outputs=[12]), ["operator 1 (MAX_POOL_2D)", "writes tensor 12", "written twice"]),
    (op_io(1, outputs=[11]), ["writes tensor 11", "read-only"]),
    (op_io(1, outputs=[0]), ["writes tensor 0", "read-only"]),
    (drop_last_op, ["subgraph 0 output 22", "is never written"]),
])
def test_operator_tensors_and_data_flow(edit, change, needles):
    rejected(edit(SAMPLE, change), *needles)


def test_optional_bias_may_be_omitted(edit):
    parse(edit(SAMPLE, op_io(9, inputs=[20, 5, -1])))  # FULLY_CONNECTED without bias: valid


# --------------------------------------------------------------------------------------- options
def set_option(op: int, **fields):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        for key, value in fields.items():
            setattr(sg0(m).operators[op].builtinOptions, key, value)
    return change


def drop_options(m):  # type: ignore[no-untyped-def]
    op = sg0(m).operators[0]
    op.builtinOptionsType, op.builtinOptions = 0, None


@pytest.mark.parametrize("change, needles", [
    (set_option(0, strideW=0), ["operator 0 (CONV_2D)", f"stride_w 0; expected 1 to {MAX_WINDOW}"]),
    (set_option(2, dilationHFactor=2**31 - 1), ["operator 2 (DEPTHWISE_CONV_2D)", "dilation_h 2147483647"]),
    (set_option(1, filterWidth=-3), ["operator 1 (MAX_POOL_2D)", "filter_w -3"]),
    (set_option(1, padding=5), ["unknown padding or activation (5, 0)"]),
    (set_option(0, fusedActivationFunction=9), ["unknown padding or activation (0, 9)"]),
    (drop_options, ["operator 0 (CONV_2D) of subgraph 0 has no CONV_2D options"]),
])
def test_window_options(edit, change, needles):
    rejected(edit(SAMPLE, change), *needles)


# --------------------------------------------------------------------------------------- tensors
def set_tensor(index: int, **fields):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        for key, value in fields.items():
            setattr(sg0(m).tensors[index], key, value)
    return change


@pytest.mark.parametrize("change, needles", [
    (set_tensor(0, shapeSignature=[1, 28, 27, 1]), ["tensor 0", "shape_signature [1, 28, 27, 1] that does not match"]),
    (set_tensor(0, shapeSignature=[-1, 28, 28]), ["shape_signature [-1, 28, 28]"]),
    (set_tensor(12, shape=[1, 28, -28, 16]), ["tensor 12", "invalid shape [1, 28, -28, 16]"]),
    (set_tensor(12, shape=[1, 2**16, 2**16, 16], shapeSignature=None), ["would take 68719476736 bytes (limit 2147483647)"]),
    (set_tensor(5, shape=[10, 1569]), ["tensor 5", "needs 15690 bytes but its buffer has 15680"]),
    (set_tensor(11, isVariable=True), ["tensor 11", "is a variable with constant data"]),
    (set_tensor(13, type=13), ["operator 1 (MAX_POOL_2D)", "uses RESOURCE tensor 13 as data"]),
    (set_tensor(13, type=99), ["tensor 13", "unknown type code 99"]),
    (set_tensor(5, name=b"\xff\xfeweights"), ["tensor name is not UTF-8 text"]),
])
def test_tensors(edit, change, needles):
    rejected(edit(SAMPLE, change), *needles)


def test_constant_string_tensor_layout(edit):
    from ai_edge_litert import schema_py_generated as schema

    def add_string(payload: bytes):  # type: ignore[no-untyped-def]
        def change(m):  # type: ignore[no-untyped-def]
            buffer = schema.BufferT()
            buffer.data = list(payload)
            m.buffers.append(buffer)
            tensor = schema.TensorT()
            tensor.shape, tensor.type, tensor.buffer, tensor.name = [2], 5, len(m.buffers) - 1, "labels"
            sg0(m).tensors.append(tensor)
        return change

    header = (2).to_bytes(4, "little") + b"".join(v.to_bytes(4, "little") for v in (16, 19, 21))
    parse(edit(SAMPLE, add_string(header + b"catdo")))  # ["cat", "do"]: valid
    rejected(edit(SAMPLE, add_string(header[:8] + (400).to_bytes(4, "little") + header[12:] + b"catdo")),
             "string tensor 23 ('labels') has string offsets outside its buffer")
    rejected(edit(SAMPLE, add_string((1000).to_bytes(4, "little") + b"xx")), "has a malformed buffer")


# ------------------------------------------------------------------------------- buffers, signatures
def external_buffers(offset: int, size: int):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        for b in m.buffers[1:]:
            if b.data is not None and len(b.data):
                b.data, b.offset, b.size = None, offset, size
    return change


def test_external_buffers(edit):
    rejected(edit(SAMPLE, external_buffers(2**30, 64)), "external buffer (offset 1073741824, 64 bytes) lies outside")
    rejected(edit(SAMPLE, external_buffers(8, 1000)), "the buffers hold", "more than the file's")


def test_signature_tensors(edit):
    def change(m):  # type: ignore[no-untyped-def]
        m.signatureDefs[0].inputs[0].tensorIndex = 12

    rejected(edit(SAMPLE, change), "signature 'serving_default' names tensor 12 as an input", "inputs [0]")


def test_interpreter_custom_ops_need_their_options(edit):
    def change(m):  # type: ignore[no-untyped-def]
        code = m.operatorCodes[sg0(m).operators[10].opcodeIndex]
        code.builtinCode = code.deprecatedBuiltinCode = 32
        code.customCode = b"TFLite_Detection_PostProcess"
        sg0(m).operators[10].builtinOptionsType, sg0(m).operators[10].builtinOptions = 0, None

    rejected(edit(SAMPLE, change), "operator 10 (TFLite_Detection_PostProcess) of subgraph 0 has no custom options")


# ----------------------------------------------------------------------------------- control flow


def while_op(m):  # type: ignore[no-untyped-def]
    (op,) = [op for sg in m.subgraphs for op in sg.operators if op.builtinOptionsType == 93]
    return op


def set_while(**fields):  # type: ignore[no-untyped-def]
    def change(m):  # type: ignore[no-untyped-def]
        for key, value in fields.items():
            setattr(while_op(m).builtinOptions, key, value)
    return change


def call_back_into_the_loop(m):  # type: ignore[no-untyped-def]
    """Add to the loop body a CALL of the subgraph holding the WHILE: 1 -> 3 -> 1."""
    from ai_edge_litert import schema_py_generated as schema

    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = 31  # CALL
    code.version = 1
    m.operatorCodes.append(code)
    call = schema.OperatorT()
    call.opcodeIndex, call.inputs, call.outputs = len(m.operatorCodes) - 1, [], []
    call.builtinOptionsType, call.builtinOptions = 16, schema.CallOptionsT()
    call.builtinOptions.subgraph = 1
    m.subgraphs[3].operators.append(call)


def extra_cond_output(m):  # type: ignore[no-untyped-def]
    m.subgraphs[2].outputs = list(m.subgraphs[2].outputs) + [0]


@pytest.mark.tf
@pytest.mark.parametrize("change, needles", [
    (set_while(bodySubgraphIndex=1), ["operator 0 (WHILE) of subgraph 1 calls subgraph 1 as its body subgraph",
                                      "cannot call its own"]),
    (set_while(condSubgraphIndex=9), ["calls subgraph 9 as its cond subgraph; the model has 4 subgraphs"]),
    (set_while(condSubgraphIndex=-2), ["calls subgraph -2"]),
    (call_back_into_the_loop, ["subgraphs call each other in a cycle (1 -> 3 -> 1)"]),
    (extra_cond_output, ["calls subgraph 2 as its cond with 3 inputs and 1 outputs, but it has 3 and 2"]),
])
def test_control_flow(edit, while_model, change, needles):
    parse(while_model.read_bytes())
    rejected(edit(while_model, change), *needles)


@pytest.mark.tf
def test_dequantized_weights_keep_their_shape(edit, tfl_float16):
    def change(m):  # type: ignore[no-untyped-def]
        (op,) = [op for op in sg0(m).operators if m.operatorCodes[op.opcodeIndex].builtinCode == 6][:1]
        sg0(m).tensors[op.outputs[0]].shape = [8, 1, 65535, 8]

    rejected(edit(tfl_float16, change), "(DEQUANTIZE)", "turns constant tensor", "into shape [8, 1, 65535, 8]")


# ------------------------------------------------------------------------------ valid models pass
@pytest.mark.tf
@pytest.mark.parametrize("name", ["edgeq_int8", "edgeq_float_io", "edgeq_gray", "tfl_float32", "tfl_float16", "tfl_uint8",
                                  "tfl_multi_io", "tfl_two_signatures", "tfl_custom_op", "while_model", "if_model",
                                  "variable_model"])
def test_valid_models_pass(request, name):
    model = parse(request.getfixturevalue(name).read_bytes())
    assert model.subgraphs and model.op_counts()


@pytest.mark.tf
def test_control_flow_models_run(while_model, if_model, variable_model):
    import numpy as np

    from edgeq.runtime import Model

    x = np.array([[0.5, -1.0, 2.0, 0.0]], np.float32)
    loop = Model(while_model, signature="loop").predict({"x": x, "n": np.array(3, np.int32)})["y"]
    expected = x
    for _ in range(3):
        expected = expected * 0.5 + np.sin(expected)
    np.testing.assert_allclose(loop, expected, rtol=1e-5)
    np.testing.assert_allclose(Model(while_model, signature="double").predict(x)["z"], 2 * x)
    branch = Model(if_model)
    np.testing.assert_allclose(branch.predict({"x": x, "p": np.array(True)})["y"], 2 * x)
    np.testing.assert_allclose(branch.predict({"x": x, "p": np.array(False)})["y"], np.sin(x), rtol=1e-6)
    acc = Model(variable_model)
    acc.predict(x)
    np.testing.assert_allclose(acc.predict(x)["y"], 2 * x)


# --------------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize("command", ["inspect", "run"])
def test_cli_names_the_problem_and_exits_2(edit, tmp_path, capsys, command):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(edit(SAMPLE, set_option(0, strideH=0)))
    args = [command, str(bad)] + (["--random"] if command == "run" else [])
    assert main(args) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ModelError: {bad} is a corrupt TFLite model: operator 0 (CONV_2D) of subgraph 0 "
                               "has stride_h 0"), lines[0]
