"""Rich renderables for ``edgeq tune``: every candidate measured, the Pareto front marked, the pick."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _num(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}g}"


def tune_table(result: Any) -> Table:
    """One row per candidate × threads: accuracy, latency, memory, size, front, constraints met."""
    where = ", ".join(str(d.get("cpu_part") or d.get("arch") or "?") for d in result.devices)
    title = f"edgeq tune: {len(result.rows)} candidates × threads on {where} ({result.samples} samples, {result.runs} runs)"
    table = Table(title=title, title_justify="left")
    columns = (("candidate", "left"), ("threads", "right"), ("top-1", "right"), ("drop", "right"),
               ("agreement", "right"), ("p50 ms", "right"), ("p90 ms", "right"), ("memory MB", "right"),
               ("size KB", "right"), ("front", "center"), ("constraints", "left"))
    for name, justify in columns:
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in result.rows:
        picked = result.pick is row
        drop = "—" if row.drop_points is None else f"{row.drop_points:+.1f}"
        met = Text("ok", style="green") if not row.violations else Text("; ".join(row.violations), style="red")
        table.add_row(
            Text(("▶ " if picked else "") + row.candidate.name, style="bold" if picked else ""), str(row.threads),
            _pct(row.top1), drop, _pct(row.agreement), _num(row.p50_ms), _num(row.p90_ms), _num(row.memory_mb),
            f"{row.size_kb:.0f}", "●" if row.on_front else "", met,
        )
    return table


def pick_lines(result: Any) -> list[str]:
    """The pick and why, or the nearest candidates one per line (plain text for stderr)."""
    if result.pick is not None:
        return [f"pick: {result.why}"]
    return [f"nearest: {r.label}: {'; '.join(r.violations)}" for r in result.nearest]
