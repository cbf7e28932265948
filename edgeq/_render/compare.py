"""Pictures of a comparison: a PNG drawn with Pillow and a self-contained HTML page (inline CSS and SVG).

The chart answers "which is faster, by how much, and how stable?": one row per entry (report × thread count)
with a dot at the median (p50), a thick bar over p10–p90 (the typical spread) and a thin line over p1–p99,
coloured by the verdict against the baseline (faster or slower beyond the runs' noise, or the same within it).
The axis is logarithmic when the times span more than :data:`LOG_SPREAD`x, else linear from 0. Both pictures
are drawn from one list of shapes (:func:`_scene`), so the PNG and the page's SVG cannot disagree. No
matplotlib, no network at view time: the HTML page holds everything it shows.
"""

from __future__ import annotations

import html
import io
import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from edgeq._render.common import human_bytes
from edgeq._render.text import safe_str
from edgeq.runtime.report import COMPARE_METRICS, CompareEntry, CompareResult

WIDTH = 1100
LABEL_W = 310
RIGHT_W = 250
ROW_H = 60
TOP = 92
BOTTOM = 56
#: the axis turns logarithmic when the slowest p99 is more than this many times the fastest p1
LOG_SPREAD = 10.0
#: colours by verdict against the baseline
COLORS = {"baseline": "#2f6db5", "faster": "#23803f", "slower": "#c0392b", "same": "#7b8794"}
VERDICT_TEXT = {"faster": "faster", "slower": "slower", "same": "same within noise"}


@dataclass(frozen=True)
class _Shape:
    """One primitive of the chart: ``line``, ``rect``, ``circle`` or ``text`` (``y`` of a text is its baseline)."""

    kind: str
    coords: tuple[float, ...]
    color: str = "#222222"
    width: float = 1.0
    opacity: float = 1.0
    text: str = ""
    size: int = 12
    anchor: str = "start"  # start, middle or end
    bold: bool = False
    tip: str = ""


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _percentiles(e: CompareEntry) -> tuple[float, float, float, float, float]:
    """p1, p10, p50, p90, p99 of an entry's raw timings (its summary when it has none)."""
    if len(e.timings_ms) >= 2:
        p1, p10, p50, p90, p99 = np.percentile(e.timings_ms, [1, 10, 50, 90, 99])
        return float(p1), float(p10), float(p50), float(p90), float(p99)
    lat = e.latency
    return lat.min_ms, lat.p50_ms, lat.p50_ms, lat.p90_ms, lat.p99_ms


class _Axis:
    """Latency (ms) → x pixel, linear from 0 or logarithmic, with its tick values."""

    def __init__(self, lo: float, hi: float, x0: float, x1: float) -> None:
        self.x0, self.x1 = x0, x1
        self.log = lo > 0 and hi / lo > LOG_SPREAD
        if self.log:  # bounds and ticks on the 1-2-5 series around the data
            series = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1)
                      for m in (1, 2, 5)]
            self.lo = max(v for v in series if v <= lo * 1.0001)
            self.hi = min(v for v in series if v >= hi * 0.9999)
            self.ticks = [v for v in series if self.lo * 0.9999 <= v <= self.hi * 1.0001]
            if len(self.ticks) > 12:
                self.ticks = [v for v in self.ticks if math.isclose(10 ** round(math.log10(v)), v)]
        else:
            step = _nice_step(hi * 1.05 or 1.0)
            self.lo, self.hi = 0.0, step * math.ceil((hi * 1.05 or 1.0) / step)
            self.ticks = [k * step for k in range(int(round(self.hi / step)) + 1)]

    def __call__(self, v: float) -> float:
        if self.log:
            v = min(max(v, self.lo), self.hi)
            frac = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            frac = min(max(v, 0.0), self.hi) / self.hi
        return round(self.x0 + (self.x1 - self.x0) * frac, 2)


def _fit(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _verdict_text(e: CompareEntry, baseline: bool) -> tuple[str, str]:
    if baseline:
        return "baseline", COLORS["baseline"]
    ratio = e.ratios.get("p50_ms")
    if ratio is None or e.verdict is None:
        return "no verdict (too few timings)", COLORS["same"]
    interval = f" [{e.p50_interval[0]:.2f}-{e.p50_interval[1]:.2f}]" if e.p50_interval else ""
    if e.verdict == "same":
        return f"~{ratio:.2f}x p50: same within noise", COLORS["same"]
    return f"{ratio:.2f}x p50{interval}: {e.verdict}", COLORS[e.verdict]


def _scene(result: CompareResult, title: str) -> tuple[list[_Shape], int]:
    """The chart as shapes, and its height in pixels."""
    entries = result.entries
    stats = [_percentiles(e) for e in entries]
    lo = min(min(p[0], p[2]) for p in stats)
    hi = max(max(p[4], p[2]) for p in stats)
    x0, x1 = LABEL_W + 10, WIDTH - RIGHT_W
    axis = _Axis(lo, hi, x0, x1)
    height = TOP + ROW_H * len(entries) + BOTTOM
    plot_bottom = TOP + ROW_H * len(entries)
    out: list[_Shape] = [_Shape("text", (16, 30), text=safe_str(title), size=20, bold=True)]
    # legend: what the marks mean, then what the colours mean
    ly = 62
    out += [
        _Shape("line", (16, ly - 4, 44, ly - 4), "#555555", 2),
        _Shape("rect", (20, ly - 9, 40, ly + 1), "#555555", opacity=0.45),
        _Shape("circle", (30, ly - 4, 5), "#333333"),
        _Shape("text", (52, ly), text="dot: median (p50) · thick bar: p10-p90 · thin line: p1-p99", size=12, color="#333333"),
    ]
    lx = 470
    for key, label in (("baseline", "baseline"), ("faster", "faster"), ("slower", "slower"), ("same", "same within noise")):
        out += [_Shape("circle", (lx, ly - 4, 5), COLORS[key]), _Shape("text", (lx + 10, ly), text=label, size=12, color="#333333")]
        lx += 22 + 7 * len(label)
    out.append(_Shape("text", (lx + 4, ly), text="(vs baseline p50, 95 % bootstrap)", size=12, color="#777777"))
    # grid and ticks
    for t in axis.ticks:
        tx = axis(t)
        out += [_Shape("line", (tx, TOP - 6, tx, plot_bottom), "#e3e3e3"),
                _Shape("text", (tx, plot_bottom + 18), text=f"{t:g}", size=12, color="#555555", anchor="middle")]
    scale = "log scale" if axis.log else "linear"
    out.append(_Shape("text", ((x0 + x1) / 2, height - 14), text=f"latency per inference (ms, {scale})", size=13,
                      color="#333333", anchor="middle"))
    for i, (e, (p1, p10, p50, p90, p99)) in enumerate(zip(entries, stats)):
        top = TOP + i * ROW_H
        mid = top + ROW_H / 2
        base = i == result.baseline
        verdict, color = _verdict_text(e, base)
        if base:
            out.append(_Shape("rect", (8, top + 3, WIDTH - 8, top + ROW_H - 3), "#eef3fa"))
        elif i % 2:
            out.append(_Shape("rect", (8, top + 3, WIDTH - 8, top + ROW_H - 3), "#f8f8f8"))
        sub = safe_str(f"{e.model}, {e.mode}, {e.threads} thr")  # ASCII: Pillow's default font lacks some symbols
        out += [_Shape("text", (16, mid - 9), text=_fit(safe_str(f"{i + 1}. {e.device}"), 40), size=14, bold=True),
                _Shape("text", (16, mid + 8), text=_fit(sub, 48), size=12, color="#444444"),
                _Shape("text", (16, mid + 23), text=_fit(safe_str(e.name), 48), size=11, color="#777777")]
        tip = f"p1 {p1:.3g}, p10 {p10:.3g}, p50 {p50:.3g}, p90 {p90:.3g}, p99 {p99:.3g} ms"
        out += [_Shape("line", (axis(p1), mid, axis(p99), mid), color, 2, 0.8),
                _Shape("rect", (axis(p10), mid - 6, max(axis(p90), axis(p10) + 2), mid + 6), color, opacity=0.45),
                _Shape("circle", (axis(p50), mid, 6), color, tip=tip)]
        fps = e.metrics.get("fps")
        out += [_Shape("text", (x1 + 14, mid - 3), text=f"p50 {p50:.3g} ms" + (f", {fps:.0f} FPS" if fps else ""),
                       size=13, color="#222222"),
                _Shape("text", (x1 + 14, mid + 14), text=_fit(verdict, 36), size=12, color=color, bold=not base)]
    return out, height


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _rgba(color: str, opacity: float = 1.0) -> tuple[int, int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), round(255 * opacity)


def render_png(result: CompareResult, title: str = "edgeq compare: latency per report") -> bytes:
    """The comparison chart as a PNG (1100 px wide): median dot, p10–p90 bar, p1–p99 line, verdict colours."""
    from PIL import Image, ImageDraw

    shapes, height = _scene(result, title)
    img = Image.new("RGBA", (WIDTH, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img, "RGBA")
    fonts: dict[int, Any] = {}
    for s in shapes:
        c = s.coords
        if s.kind == "line":
            draw.line([(c[0], c[1]), (c[2], c[3])], fill=_rgba(s.color, s.opacity), width=max(1, round(s.width)))
        elif s.kind == "rect":
            draw.rectangle([(c[0], c[1]), (c[2], c[3])], fill=_rgba(s.color, s.opacity))
        elif s.kind == "circle":
            draw.ellipse([(c[0] - c[2], c[1] - c[2]), (c[0] + c[2], c[1] + c[2])], fill=_rgba(s.color, s.opacity),
                         outline=(255, 255, 255, 255))
        else:
            font = fonts.setdefault(s.size, _font(s.size))
            width = draw.textlength(s.text, font=font)
            x = c[0] - {"start": 0, "middle": width / 2, "end": width}[s.anchor]
            ascent = font.getmetrics()[0] if hasattr(font, "getmetrics") else s.size
            draw.text((x, c[1] - ascent), s.text, fill=_rgba(s.color, s.opacity), font=font)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_svg(result: CompareResult, title: str = "edgeq compare: latency per report") -> str:
    """The same chart as :func:`render_png`, as inline SVG (hover a dot for its percentiles)."""
    shapes, height = _scene(result, title)
    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'role="img" aria-label="latency per report" id="chart">']
    for s in shapes:
        c = s.coords
        op = f' opacity="{s.opacity}"' if s.opacity < 1 else ""
        if s.kind == "line":
            parts.append(f'<line x1="{c[0]}" y1="{c[1]}" x2="{c[2]}" y2="{c[3]}" stroke="{s.color}" '
                         f'stroke-width="{s.width}"{op}/>')
        elif s.kind == "rect":
            parts.append(f'<rect x="{c[0]}" y="{c[1]}" width="{round(c[2] - c[0], 2)}" height="{round(c[3] - c[1], 2)}" '
                         f'fill="{s.color}"{op}/>')
        elif s.kind == "circle":
            tip = f"<title>{e(s.tip)}</title>" if s.tip else ""
            parts.append(f'<circle cx="{c[0]}" cy="{c[1]}" r="{c[2]}" fill="{s.color}" stroke="#fff"{op}>{tip}</circle>')
        else:
            weight = ' font-weight="600"' if s.bold else ""
            parts.append(f'<text x="{c[0]}" y="{c[1]}" font-size="{s.size}" fill="{s.color}" text-anchor="{s.anchor}"'
                         f"{weight}{op}>{e(s.text)}</text>")
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}table{border-collapse:collapse;margin:1rem 0;font-size:.85rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:right;white-space:nowrap;vertical-align:top}
th{background:#f3f5f8}td.l,th.l{text-align:left}tr.base td{background:#eef3fa;font-weight:600}
.faster{color:#23803f;font-weight:600}.slower{color:#c0392b;font-weight:600}.same{color:#7b8794}.notes{color:#8a5a00}
svg{max-width:1100px;display:block}svg text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
footer{color:#777;font-size:.8rem;margin-top:2rem}
"""


def _cell(key: str, entry: CompareEntry, baseline: bool) -> str:
    value = entry.metrics.get(key)
    if value is None:
        return "<td>—</td>"
    text = human_bytes(value) if key.endswith("_bytes") else f"{value:.1f}" if key == "fps" else f"{value:.3f}"
    ratio = entry.ratios.get(key)
    if baseline or ratio is None:
        return f"<td>{html.escape(text)}</td>"
    if key in ("p50_ms", "fps"):  # judged against the runs' noise (bootstrap interval of the p50 ratio)
        cls = entry.verdict if entry.verdict in ("faster", "slower") else "same"
        mark = "≈" if cls == "same" else ""
        interval = ""
        if key == "p50_ms" and entry.p50_interval:
            interval = f" [{entry.p50_interval[0]:.2f}–{entry.p50_interval[1]:.2f}]"
        return f'<td>{html.escape(text)}<br><span class="{cls}">{mark}{ratio:.2f}×{interval}</span></td>'
    cls = "same"
    if key == "size_bytes" and abs(ratio - 1) > 0.02:  # sizes do not vary between runs
        cls = "faster" if ratio < 1 else "slower"
    return f'<td>{html.escape(text)}<br><span class="{cls}">{ratio:.2f}×</span></td>'


def render_html(result: CompareResult, title: str = "edgeq compare", generated: str = "") -> str:
    """A self-contained HTML page: the comparison table, the latency chart (inline SVG) and notes."""
    def e(value: object) -> str:
        return html.escape(safe_str(value))

    head = "".join(f'<th class="l">{c}</th>' for c in ("#", "device", "model", "mode", "report", "backend"))
    head += "<th>threads</th>"
    head += "".join(f"<th>{e(label)}{' (ms)' if unit == 'ms' else ''}</th>" for label, unit, _ in COMPARE_METRICS.values())
    body = []
    for i, entry in enumerate(result.entries):
        base = i == result.baseline
        cells = (f'<td class="l">{i + 1}{"*" if base else ""}</td><td class="l">{e(entry.device)}</td>'
                 f'<td class="l">{e(entry.model)}</td><td class="l">{e(entry.mode)}</td><td class="l">{e(entry.name)}</td>'
                 f'<td class="l">{e(entry.backend)}</td>'
                 f"<td>{entry.threads}</td>" + "".join(_cell(k, entry, base) for k in COMPARE_METRICS))
        body.append(f'<tr{" class=base" if base else ""}>{cells}</tr>')
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    sources = "".join(f"<li>{i + 1}: {e(entry.source)}</li>" for i, entry in enumerate(result.entries))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head><body>'
        f"<h1>{e(title)}</h1>"
        f"{render_svg(result, 'Latency per report')}"
        f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        "<p>* baseline. n× is the value divided by the baseline's. p50 and FPS are green (faster) or red (slower) "
        "only when the 95 % bootstrap interval of the p50 ratio, shown in brackets, excludes 1 and the difference "
        "exceeds 2 %; ≈ means within the runs' noise. FPS is 1000 / p50. Memory is the peak RSS increase of a fresh "
        "process that loads and runs the model.</p>"
        f'{f"<ul class=notes>{notes}</ul>" if notes else ""}'
        f"<h2>Reports</h2><ul>{sources}</ul>"
        f"<footer>made by edgeq compare{(' on ' + e(generated)) if generated else ''}.</footer>"
        "</body></html>\n"
    )


def titles(entries: Sequence[CompareEntry]) -> str:
    """A page title naming the devices compared."""
    devices = list(dict.fromkeys(e.device for e in entries))
    return safe_str("edgeq compare: " + (" vs ".join(devices[:4]) + (" …" if len(devices) > 4 else "")))
