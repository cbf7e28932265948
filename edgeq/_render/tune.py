"""Rich renderables for ``edgeq tune``: every candidate measured, the Pareto front marked, the pick."""

from __future__ import annotations

import html
import math
from typing import Any

from rich.table import Table
from rich.text import Text

from edgeq._render.text import safe_str


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
            Text(("▶ " if picked else "") + safe_str(row.candidate.name), style="bold" if picked else ""), str(row.threads),
            _pct(row.top1), drop, _pct(row.agreement), _num(row.p50_ms), _num(row.p90_ms), _num(row.memory_mb),
            f"{row.size_kb:.0f}", "●" if row.on_front else "", met,
        )
    return table


def pick_lines(result: Any) -> list[str]:
    """The pick and why, or the nearest candidates one per line (plain text for stderr)."""
    if result.pick is not None:
        return [f"pick: {result.why}"]
    return [f"nearest: {r.label}: {'; '.join(r.violations)}" for r in result.nearest]


# ------------------------------------------------------------------------------------ HTML chart
CHART_W, CHART_H, MARGIN = 900, 520, 70


def _scale(values: list[float], lo_px: float, hi_px: float, log: bool) -> Any:
    lo, hi = min(values), max(values)
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    span = (hi - lo) or 1.0
    lo, hi = lo - span * 0.08, hi + span * 0.08

    def to_px(v: float) -> float:
        v = math.log10(v) if log else v
        return lo_px + (v - lo) / (hi - lo) * (hi_px - lo_px)

    return to_px


def render_html(result: Any) -> str:
    """A self-contained page: accuracy vs p50 latency, one marker per candidate × threads (area ∝ file size),
    the Pareto front filled, rows that break a constraint hollow, the pick ringed; then the pick and why."""
    rows = result.rows
    lat = [max(r.p50_ms, 1e-6) for r in rows]
    log = max(lat) / min(lat) > 10
    x = _scale(lat, MARGIN, CHART_W - 130, log)
    y = _scale([r.top1 * 100 for r in rows], CHART_H - MARGIN, 20, False)
    biggest = max(r.size_kb for r in rows) or 1.0
    marks = []
    for row, ms in zip(rows, lat):
        cx, cy = x(ms), y(row.top1 * 100)
        radius = 4 + 14 * math.sqrt(row.size_kb / biggest)
        color = "#3b6ea8" if row.on_front else "#9aa3ad"
        fill = "none" if row.violations else color
        title = html.escape(f"{row.label}: top-1 {row.top1:.1%}, p50 {row.p50_ms:.3g} ms, {row.size_kb:.0f} KB"
                            + (f" — {'; '.join(row.violations)}" if row.violations else ""))
        marks.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius:.1f}" fill="{fill}" fill-opacity="0.7" '
                     f'stroke="{color}" stroke-width="2"><title>{title}</title></circle>')
        if row.on_front or row is result.pick:  # dominated rows: hover for the name (keeps clusters legible)
            marks.append(f'<text x="{cx + radius + 3:.1f}" y="{cy + 4:.1f}" font-size="11">{html.escape(row.label)}</text>')
        if row is result.pick:
            marks.append(f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="{radius + 5:.1f}" fill="none" stroke="#b8443f" '
                         'stroke-width="3"/>')
    axes = (f'<line x1="{MARGIN}" y1="{CHART_H - MARGIN}" x2="{CHART_W - 20}" y2="{CHART_H - MARGIN}" stroke="#333"/>'
            f'<line x1="{MARGIN}" y1="20" x2="{MARGIN}" y2="{CHART_H - MARGIN}" stroke="#333"/>'
            f'<text x="{CHART_W / 2:.0f}" y="{CHART_H - 25}" text-anchor="middle">p50 latency, ms'
            f'{" (log scale)" if log else ""}: {min(lat):.3g} … {max(lat):.3g}</text>'
            f'<text x="18" y="{CHART_H / 2:.0f}" transform="rotate(-90 18 {CHART_H / 2:.0f})" text-anchor="middle">'
            f'top-1 %: {min(r.top1 for r in rows):.1%} … {max(r.top1 for r in rows):.1%}</text>')
    verdict = html.escape(result.why)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeq tune</title>"
        "<style>body{font-family:sans-serif;margin:24px;color:#222}p{max-width:900px}</style></head><body>"
        f"<h2>edgeq tune: {len(rows)} candidates × threads</h2>"
        f"<svg width='{CHART_W}' height='{CHART_H}' xmlns='http://www.w3.org/2000/svg'>{axes}{''.join(marks)}</svg>"
        "<p>Marker area ∝ file size. Filled blue: on the Pareto front (accuracy, p50 latency, size); grey: dominated; "
        "hollow: breaks a constraint; red ring: the pick. Only front rows are named: hover any marker for its figures.</p>"
        f"<p><b>{'pick' if result.pick else 'no pick'}:</b> {verdict}</p></body></html>\n"
    )
