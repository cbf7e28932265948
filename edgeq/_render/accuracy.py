"""Rich renderables for ``edgeq eval``, ``edgeq debug`` and the float-fallback part of ``edgeq convert``."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table
from rich.text import Text

from edgeq._render.common import fmt, human_bytes, key_value_table, preprocessing_text
from edgeq._render.text import safe_str, safe_text

#: the confusion matrix is printed in full up to this many classes (the most-confused pairs always)
MATRIX_MAX_CLASSES = 12
#: tensor names longer than this are shortened in tables (JSON/CSV keep them whole)
NAME_WIDTH = 48


def _pct(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f} %"


def _db(value: float | None) -> str:
    if value is None:
        return "—"
    return "∞" if math.isinf(value) and value > 0 else f"{value:.1f} dB"


def _short(name: str, width: int = NAME_WIDTH) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1):]


# ------------------------------------------------------------------------------------------ eval
def eval_tables(result: Any) -> list[Any]:
    """Summary, reference comparison, per-class accuracy and the confusion summary of ``edgeq eval``."""
    rows: list[tuple[str, Any]] = [
        ("model", result.model), ("data", f"{result.data} ({result.samples} samples)"),
        ("top-1 accuracy", _pct(result.top1)), (f"top-{result.k} accuracy", _pct(result.top5)),
    ]
    ref = result.reference
    if ref is not None:
        rows += [
            ("reference", ref.name),
            ("reference top-1 / top-{}".format(result.k), f"{_pct(ref.top1)} / {_pct(ref.top5)}"),
            ("drop vs reference", f"{ref.drop_points:+.2f} pts" if ref.drop_points else "0.00 pts"),
            ("top-1 agreement", _pct(ref.agreement)),
            ("output SQNR", _db(ref.sqnr_db)),
        ]
    rows.append(("time", f"{result.seconds:.1f} s"))
    out: list[Any] = [key_value_table("Accuracy on labelled data", rows)]
    per_class = Table(title="Per class", title_justify="left")
    for col, justify in (("class", "left"), ("samples", "right"), ("correct", "right"), ("accuracy", "right")):
        per_class.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in result.per_class:
        per_class.add_row(safe_text(c.name), str(c.samples), str(c.correct), _pct(c.accuracy, 1))
    out.append(per_class)
    out += _confusion(result)
    return out


def _confusion(result: Any) -> list[Any]:
    pairs = result.most_confused()
    if len(result.classes) <= MATRIX_MAX_CLASSES:
        matrix = Table(title="Confusion (rows: true class, columns: predicted)", title_justify="left")
        matrix.add_column("")
        for i in range(len(result.classes)):
            matrix.add_column(str(i), justify="right")
        for i, name in enumerate(result.classes):
            cells = [Text(str(n), style="bold" if i == j else ("red" if n else "dim")) for j, n in enumerate(result.confusion[i])]
            matrix.add_row(safe_text(f"{i} {name}"), *cells)
        if not pairs:
            return [matrix]
        # one line per pair under the matrix: a caption would wrap mid-name at the matrix's width
        lines = Text("most confused (true → predicted):", style="bold")
        lines.append(safe_str("".join(f"\n  {t} → {p}: {n}" for t, p, n in pairs), lines=True), style="")
        return [matrix, lines]
    table = Table(title="Most confused (true → predicted)", title_justify="left")
    for col in ("true", "predicted", "count"):
        table.add_column(col)
    for t, p, n in pairs:
        table.add_row(safe_text(t), safe_text(p), str(n))
    return [table]


# ----------------------------------------------------------------------------------------- debug
def debug_tables(report: Any, top: int | None = None) -> list[Any]:
    """The ranked layer table of ``edgeq debug`` and its suggestion."""
    layers = report.layers if top is None else report.layers[:top]
    table = Table(title=safe_text(f"Layers by int8 quantization error, worst first ({report.samples} samples, "
                                  f"calibration {report.calibration})"), title_justify="left")
    for col, justify in (("#", "right"), ("Keras layer", "left"), ("op", "left"), ("tensor", "left"), ("SQNR", "right"),
                         ("RMSE/scale", "right"), ("max abs err", "right"), ("range", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    suggested = {r.tensor for r in report.suggestions}
    for rank, r in enumerate(layers, 1):
        style = "red" if r.tensor in suggested else None
        table.add_row(str(rank), safe_text(r.layer or "—"), safe_text(r.op), safe_text(_short(r.tensor)), _db(r.sqnr_db), fmt(r.rmse_scale, 3),
                      fmt(r.max_abs_error, 3), fmt(r.range, 4), style=style)
    if top is not None and len(report.layers) > top:
        table.caption = f"{len(report.layers) - top} more layer(s): --top 0 shows all, --csv writes all"
    out: list[Any] = [table]
    if report.preprocessing is not None:  # what the model was fed, as convert's table shows it
        out.insert(0, Text.assemble(("Preprocessing: ", "bold"), safe_str(preprocessing_text(report.preprocessing))))
    if report.suggestions:
        names = ", ".join(r.name for r in report.suggestions)
        out.append(Text.assemble(("Suggestion: ", "bold"), safe_str(f"keep {names} in float ({report.criterion})."), "\n",
                                 ("Run: ", "bold"), safe_str(report.command)))
    else:
        out.append(Text.assemble(("No layer stands out ", "bold"), f"({report.criterion}): the int8 error is spread "
                                 "evenly; try --calibration percentile:99.99 or mse, or --mode int16x8."))
    return out


# --------------------------------------------------------------------------------------- fallback
def fallback_tables(report: Any) -> list[Any]:
    """The calibration change, the cost/budget table and what runs in float, after ``edgeq convert``."""
    out: list[Any] = []
    if report.range_changes:
        widest = max(report.range_changes, key=lambda c: c.shrink)
        out.append(safe_text(
            f"Calibration {report.calibration}: changed {len(report.range_changes)} activation range(s); most: "
            f"{_short(widest.tensor)} [{fmt(widest.before[0])}, {fmt(widest.before[1])}] → "
            f"[{fmt(widest.after[0])}, {fmt(widest.after[1])}] ({widest.shrink:.3g}x narrower)"))
    if len(report.steps) > 1 or report.budget is not None or report.keep_float:
        budget = report.budget
        title = "Float fallback: what each choice costs"
        if budget is not None:
            what = ("pts of top-1 accuracy below the Keras model" if budget["metric"] == "top1"
                    else "pts of top-1 disagreement with the Keras model")
            ref = f"; Keras top-1 {_pct(budget['reference'])}" if budget["metric"] == "top1" else ""
            title = f"Accuracy budget: at most {budget['max_drop']:g} {what} ({budget['samples']} samples{ref})"
        table = Table(title=safe_text(title), title_justify="left")
        for col, justify in (("step", "left"), ("kept in float", "left"), ("float ops", "right"), ("top-1", "right"),
                             ("agreement", "right"), ("size", "right"), ("latency p50", "right"), ("budget", "center")):
            table.add_column(col, justify=justify)  # type: ignore[arg-type]
        for i, s in enumerate(report.steps):
            kept = ", ".join(_short(n, 28) for n in (s.shown or s.keep_float)) or "—"
            mark = "" if s.within_budget is None else ("✓" if s.within_budget else "✗")
            table.add_row(safe_text(("→ " if i == report.chosen else "  ") + _short(s.label, 60)), safe_text(kept), str(s.float_ops), _pct(s.accuracy),
                          _pct(s.agreement) + (f" ({s.failure_text})" if s.failed else ""), human_bytes(s.size),
                          "—" if s.latency_ms is None else f"{s.latency_ms:.3f} ms", mark,
                          style="bold" if i == report.chosen else None)
        table.caption = safe_text("→ = the model written" + (f"; {report.message}" if report.message else "")
                                  + "; latency: median, models timed interleaved")
        out.append(table)
    if report.plan.details:
        lines = [f"{name}: " + ", ".join(_short(d, 60) for d in ops) for name, ops in report.plan.details.items()]
        out.append(Text("Runs in float (a kept tensor's readers too, so it is never quantized):\n  "
                        + "\n  ".join(safe_str(line) for line in lines), style="dim"))
    return out
