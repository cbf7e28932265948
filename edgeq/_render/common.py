"""Pure functions that turn results into ``rich`` renderables; only the CLI prints them."""

from __future__ import annotations

import math
from typing import Any, Sequence

from rich.table import Table

from edgeq._render.text import safe_text


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if math.isinf(value):
            return "∞"
        return f"{value:.{digits}g}"
    return str(value)


def key_value_table(title: str, rows: Sequence[tuple[str, Any]]) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows:
        table.add_row(key, value if hasattr(value, "__rich__") else safe_text(fmt(value)))
    return table


def preprocessing_text(decision: dict[str, Any]) -> str:
    """The normalisation fed to a model and why, from a ``preprocessing`` decision (metadata ``source.preprocessing``)."""
    return f"--normalize {decision['normalize']} ({decision['decided_by']}): {decision['reason']}"


def conversion_table(result: Any) -> Table:
    """The verification table printed after ``edgeq convert``."""
    v = result.verification
    agreement = "n/a (not a classifier)" if v.agreement is None else f"{v.agreement * 100:.1f} %"
    rows = [
        ("output", str(result.out)),
        ("mode", result.mode),
        ("input / output", f"{result.metadata.quant.input_type} / {result.metadata.quant.output_type}"),
        *([("preprocessing", preprocessing_text(pp))] if (pp := result.metadata.source.get("preprocessing")) else []),
        ("samples compared", f"{v.samples} ({'held out' if v.held_out else 'not held out'})"),
        ("top-1 agreement", agreement),
        *([("top-1 accuracy", f"float {v.float_accuracy * 100:.1f} % → {result.mode} {v.accuracy * 100:.1f} %")]
          if v.accuracy is not None and v.float_accuracy is not None else []),
        ("SQNR", f"{fmt(v.sqnr_db, 3)} dB"),
        ("max / mean abs error", f"{fmt(v.max_abs_error)} / {fmt(v.mean_abs_error)}"),
        ("size", f"{human_bytes(v.size_before)} → {human_bytes(v.size_after)} ({v.size_ratio:.2f}x)"),
        ("ops left in float", ", ".join(f"{k}×{n}" for k, n in v.float_ops.items()) or "none"),
        ("time", ", ".join(f"{k} {s:.1f}s" for k, s in result.seconds.items())),
        *[(f"output {o.name}", f"SQNR {fmt(o.sqnr_db, 3)} dB, mean abs error {fmt(o.mean_abs_error)}"
           + (f", agreement {o.agreement * 100:.1f} %" if o.agreement is not None else ""))
          for o in (v.outputs if len(v.outputs) > 1 else ())],
        *[("warning", check) for check in getattr(result, "checks", ())],
    ]
    return key_value_table("Conversion verified against the float model", rows)


def tensors_table(title: str, tensors: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=safe_text(title), title_justify="left", min_width=len(title))
    for col in ("name", "shape", "dtype", "scale", "zero point"):
        table.add_column(col)
    for t in tensors:
        table.add_row(safe_text(t["name"]), str(t.get("shape_signature") or t["shape"]), safe_text(t["dtype"]),
                      fmt(t["scale"] or None),
                      str(t["zero_point"]) if t["scale"] else "—")
    return table


def counts_table(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=safe_text(title), title_justify="left", min_width=len(title))
    table.add_column("op")
    table.add_column("count", justify="right")
    for op, n in counts.items():
        table.add_row(safe_text(op), str(n))
    return table


def predictions_table(title: str, top: Sequence[tuple[str, float]]) -> Table:
    table = Table(title=safe_text(title), title_justify="left", min_width=len(title))
    table.add_column("#", justify="right")
    table.add_column("label")
    table.add_column("score", justify="right")
    for i, (label, score) in enumerate(top, 1):
        table.add_row(str(i), safe_text(label), f"{score:.4f}")
    return table


def outputs_table(title: str, outputs: dict[str, Any]) -> Table:
    table = Table(title=safe_text(title), title_justify="left", min_width=len(title))
    for col in ("output", "shape", "dtype", "min", "max", "mean"):
        table.add_column(col)
    for name, arr in outputs.items():
        table.add_row(safe_text(name), str(list(arr.shape)), str(arr.dtype), fmt(float(arr.min())), fmt(float(arr.max())),
                      fmt(float(arr.mean())))
    return table


def run_table(records: Sequence[dict[str, Any]], classifier: bool) -> Table:
    """``edgeq run`` on several inputs: one row per input (classifiers: top label and score), latency last."""
    table = Table(title=f"{len(records)} inputs", title_justify="left", min_width=12)
    table.add_column("input", overflow="fold")
    if classifier:
        table.add_column("label")
        table.add_column("score", justify="right")
    else:
        for col in ("output", "shape", "min", "max", "mean"):
            table.add_column(col, justify="left" if col in ("output", "shape") else "right")
    table.add_column("ms", justify="right")
    for r in records:
        ms = f"{r['latency_ms']:.2f}"
        if classifier:
            label, score = r["top"][0]
            table.add_row(r["input"], label, f"{score:.4f}", ms)
            continue
        for i, (name, arr) in enumerate(r["outputs"].items()):
            table.add_row(r["input"] if i == 0 else "", name, str(list(arr.shape)), fmt(float(arr.min())),
                          fmt(float(arr.max())), fmt(float(arr.mean())), ms if i == 0 else "")
    return table


def run_summary_table(records: Sequence[dict[str, Any]]) -> Table:
    """How many inputs each class was the top label of, most frequent first, with the mean top score."""
    counts: dict[str, list[float]] = {}
    for r in records:
        label, score = r["top"][0]
        counts.setdefault(label, []).append(score)
    table = Table(title="Top label per class", title_justify="left", min_width=20)
    for col, justify in (("label", "left"), ("inputs", "right"), ("share", "right"), ("mean score", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for label, scores in sorted(counts.items(), key=lambda kv: (-len(kv[1]), kv[0])):
        table.add_row(label, str(len(scores)), f"{len(scores) / len(records) * 100:.1f} %", f"{sum(scores) / len(scores):.4f}")
    return table


def demo_table(result: Any) -> Table:
    """The one table of ``edgeq demo``: size, accuracy and latency, float vs int8."""
    params = f", {result.params:,} parameters" if result.params else ""
    title = f"edgeq demo: the Fashion-MNIST CNN{params}, on {result.samples} labelled images"
    table = Table(title=title, title_justify="left", min_width=len(title))
    table.add_column("model")
    table.add_column("size", justify="right")
    table.add_column("top-1 accuracy", justify="right")
    table.add_column("latency p50", justify="right")
    if result.float_accuracy is not None:
        table.add_row("Keras float32", human_bytes(result.float_size), f"{result.float_accuracy * 100:.2f} %", "—")
    drop = ratio = ""
    if result.float_accuracy is not None:
        drop = f" ({(result.int8_accuracy - result.float_accuracy) * 100:+.2f} pts)"
    if result.float_size:
        ratio = f" ({result.int8_size / result.float_size:.2f}x)"
    table.add_row("TFLite int8", human_bytes(result.int8_size) + ratio,
                  f"{result.int8_accuracy * 100:.2f} %{drop}", f"{result.latency_ms_p50:.3f} ms")
    caption = [f"latency: {result.backend}, {result.threads} thread(s)"]
    if result.verification:
        v = result.verification
        caption.insert(0, f"verified on {v['samples']} held-out images: top-1 agreement {v['agreement'] * 100:.1f} %, "
                          f"SQNR {v['sqnr_db']:.1f} dB")
    table.caption = "\n".join(caption)
    table.caption_justify = "left"
    return table
