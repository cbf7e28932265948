"""Pure function that turns a :class:`~edgeq.converters.refine.RefineReport` into a ``rich`` table."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from edgeq._render import fmt


def _agreement(v: Any) -> str:
    return "n/a" if v.agreement is None else f"{v.agreement * 100:.1f} %"


def refine_table(report: Any, refined: Any) -> Table:
    """Plain vs refined model on the same verification samples, then what each refinement step did.

    Args:
        report: the :class:`~edgeq.converters.refine.RefineReport` (``report.plain``: the plain model's verification).
        refined: the refined model's :class:`~edgeq.converters.verify.Verification`.
    """
    title = "--refine: plain vs refined conversion, vs the float model"
    table = Table(title=title, title_justify="left", min_width=len(title))
    for col, justify in (("", "left"), ("plain", "right"), ("refined", "right")):
        table.add_column(col, justify=justify)
    plain = report.plain
    if plain is not None:
        table.add_row("top-1 agreement", _agreement(plain), _agreement(refined))
        table.add_row("SQNR", f"{fmt(plain.sqnr_db, 3)} dB", f"{fmt(refined.sqnr_db, 3)} dB")
        table.add_row("mean abs error", fmt(plain.mean_abs_error), fmt(refined.mean_abs_error))
        table.add_row("max abs error", fmt(plain.max_abs_error), fmt(refined.max_abs_error))
    if report.skipped:
        table.caption = f"nothing refined: {report.skipped}"
        return table
    for s in report.steps:
        verdict = "kept" if s.kept else "undone (no gain)"
        table.add_row(f"step: {s.name}", f"{fmt(s.error_before)}", f"{fmt(s.error_after)} ({s.layers} layers, {verdict})")
    table.caption = (f"{report.layers} of {report.candidates} weighted layers refined in {report.seconds:.1f} s; "
                     f"steps judged by mean abs error on {report.check_samples} held-back calibration samples "
                     f"(statistics from {report.fit_samples})")
    return table
