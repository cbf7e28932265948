"""Pure functions that turn a :class:`~edgeq.converters.qat.QatResult` into ``rich`` renderables."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.table import Table


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.2f} %"


def layer_summary(layers: dict[str, dict[str, Any]]) -> str:
    """``4 quantized (conv 2, dense 1, …), 2 BatchNorm folded, 2 ReLU fused, 3 ranges tracked``."""
    roles = Counter(step["role"] for step in layers.values())
    kinds = Counter(step.get("kind") for step in layers.values() if step["role"] == "quantize")
    parts = [f"{roles['quantize']} quantized ({', '.join(f'{k} {n}' for k, n in sorted(kinds.items()))})"]
    if roles["fold"]:
        parts.append(f"{roles['fold']} BatchNorm folded")
    if roles["fuse"]:
        parts.append(f"{roles['fuse']} ReLU fused")
    if roles["affine"]:
        parts.append(f"{roles['affine']} per-channel affine (BatchNorm/Rescaling/Normalization)")
    activations = roles["activation"] + roles["prelu"] + sum(1 for step in layers.values() if step.get("then"))
    if activations:
        parts.append(f"{activations} activation{'s' if activations > 1 else ''} with int8 kernels")
    return ", ".join(parts)


def qat_table(result: Any) -> Table:
    """Per-epoch training figures, with the setup and the held-out accuracy as the caption."""
    table = Table(title="Quantization-aware training", title_justify="left")
    for col in ("epoch", "loss", "train accuracy", "time"):
        table.add_column(col, justify="right")
    for e in result.epochs:
        table.add_row(str(e.epoch), f"{e.loss:.4f}", _pct(e.accuracy), f"{e.seconds:.1f} s")
    training = result.training
    lines = [
        f"{training['samples'] if training['samples'] is not None else '?'} samples, batch {training['batch_size']}, "
        f"{training['setup']}",
        f"layers: {layer_summary(result.layers)}; "
        + (f"{len(result.ranges)} activation ranges trained" if result.ranges else "activations float (weight-only)"),
    ]
    if result.original is not None and result.original.agreement is not None:
        o = result.original
        lines.append(f"{result.conversion.mode} vs the original float model: top-1 agreement {o.agreement * 100:.1f} %, SQNR {o.sqnr_db:.1f} dB "
                     "(the table below checks it against the model as trained)")
    acc = result.accuracy
    if acc:
        key = next(k for k in acc if k.startswith("qat_"))
        lines.append(f"{acc['samples']} held-out samples: float {_pct(acc['float'])}, QAT {key[4:]} {_pct(acc[key])} "
                     f"({(acc[key] - acc['float']) * 100:+.2f} pts)")
    table.caption = "\n".join(lines)
    table.caption_justify = "left"
    return table
