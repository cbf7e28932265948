"""Pictures of a comparison: a PNG drawn with Pillow and a self-contained HTML page (inline CSS and SVG).

Both show, for each entry (report × thread count), the distribution of its raw timings as a small
histogram above a bar to the median, with whiskers to p90 and p99. No matplotlib, no network at view
time: the HTML page holds everything it shows.
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
LABEL_W = 330
RIGHT_W = 230
ROW_H = 64
TOP = 56
BOTTOM = 48
BINS = 40
PALETTE = ("#3b6ea8", "#d9822b", "#3f9a5b", "#b8443f", "#7d5ba6", "#8c6d3f", "#c25e9e", "#5f6b7a")


@dataclass(frozen=True)
class _Row:
    label: str
    sub: str
    p50: float
    p90: float
    p99: float
    lo: float
    hist: tuple[float, ...]  # normalised 0..1 per bin over [0, xmax]
    note: str
    note2: str
    color: str
    baseline: bool


def _nice_step(span: float, ticks: int = 6) -> float:
    raw = span / max(1, ticks)
    mag = 10 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    for m in (1, 2, 2.5, 5, 10):
        if raw <= m * mag:
            return m * mag
    return 10 * mag


def _layout(result: CompareResult) -> tuple[list[_Row], float]:
    entries = result.entries
    tails = [float(np.percentile(e.timings_ms, 99.5)) if e.timings_ms else e.latency.p99_ms for e in entries]
    xmax = max(max(tails), max(e.latency.p99_ms for e in entries)) * 1.08 or 1.0
    rows = []
    for i, e in enumerate(entries):
        counts, _ = np.histogram(np.clip(e.timings_ms, 0, xmax), bins=BINS, range=(0, xmax)) if e.timings_ms else (np.zeros(BINS), None)
        peak = counts.max() or 1
        ratio = e.ratios.get("p50_ms")
        rel = "baseline" if i == result.baseline else (f"{ratio:.2f}x baseline p50" if ratio else "")
        rows.append(_Row(
            label=safe_str(f"{i + 1}. {e.device}"), sub=safe_str(f"{e.model} · {e.mode} · {e.threads} thr"),
            p50=e.latency.p50_ms, p90=e.latency.p90_ms, p99=e.latency.p99_ms, lo=e.latency.min_ms,
            hist=tuple(float(c) / peak for c in counts),
            note=f"p50 {e.latency.p50_ms:.3g} ms, p99 {e.latency.p99_ms:.3g} ms",
            note2=f"{e.latency.fps:.1f} FPS" + (f", {rel}" if rel else ""),
            color=PALETTE[i % len(PALETTE)], baseline=i == result.baseline,
        ))
    return rows, xmax


def _font(size: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def _rgb(color: str, alpha: int = 255) -> tuple[int, int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16), alpha


def render_png(result: CompareResult, title: str = "edgeq compare: latency per report") -> bytes:
    """The comparison as a PNG: one row per entry, timing histogram + p50 bar + p90/p99 whiskers."""
    from PIL import Image, ImageDraw

    rows, xmax = _layout(result)
    height = TOP + ROW_H * len(rows) + BOTTOM
    img = Image.new("RGBA", (WIDTH, height), (255, 255, 255, 255))
    draw = ImageDraw.Draw(img, "RGBA")
    f_title, f_label, f_small = _font(18), _font(13), _font(11)
    x0, x1 = LABEL_W, WIDTH - RIGHT_W

    def x(v: float) -> float:
        return x0 + (x1 - x0) * min(max(v, 0.0), xmax) / xmax

    draw.text((16, 14), title, fill=(20, 20, 20), font=f_title)
    step = _nice_step(xmax)
    tick = 0.0
    while tick <= xmax + 1e-12:
        tx = x(tick)
        draw.line([(tx, TOP - 6), (tx, height - BOTTOM)], fill=(225, 225, 225), width=1)
        draw.text((tx - 10, height - BOTTOM + 6), f"{tick:g}", fill=(90, 90, 90), font=f_small)
        tick += step
    draw.text(((x0 + x1) / 2 - 60, height - 22), "latency per inference (ms)", fill=(60, 60, 60), font=f_small)
    for i, row in enumerate(rows):
        top = TOP + i * ROW_H
        if row.baseline:
            draw.rectangle([(8, top + 2), (WIDTH - 8, top + ROW_H - 4)], fill=(245, 247, 250))
        draw.text((16, top + 10), row.label[:44], fill=(20, 20, 20), font=f_label)
        draw.text((16, top + 30), row.sub.replace("·", "-")[:52], fill=(90, 90, 90), font=f_small)
        # histogram of the raw timings above the bar
        base, hist_h = top + 30, 22
        bin_w = (x1 - x0) / BINS
        for b, h in enumerate(row.hist):
            if h > 0:
                draw.rectangle([(x0 + b * bin_w, base - h * hist_h), (x0 + (b + 1) * bin_w - 1, base)],
                               fill=_rgb(row.color, 90))
        # bar to p50, whiskers to p90 and p99
        bar_top, bar_bot = top + 34, top + 50
        draw.rectangle([(x0, bar_top), (x(row.p50), bar_bot)], fill=_rgb(row.color))
        mid = (bar_top + bar_bot) / 2
        draw.line([(x(row.p50), mid), (x(row.p99), mid)], fill=(40, 40, 40), width=2)
        for v, h in ((row.p90, 5), (row.p99, 8)):
            draw.line([(x(v), mid - h), (x(v), mid + h)], fill=(40, 40, 40), width=2)
        draw.text((x1 + 12, top + 18), row.note, fill=(40, 40, 40), font=f_small)
        draw.text((x1 + 12, top + 34), row.note2, fill=(90, 90, 90), font=f_small)
    buf = io.BytesIO()
    img.convert("RGB").save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def render_svg(result: CompareResult) -> str:
    """The same picture as :func:`render_png`, as inline SVG."""
    rows, xmax = _layout(result)
    height = TOP + ROW_H * len(rows) + BOTTOM
    x0, x1 = LABEL_W, WIDTH - RIGHT_W

    def x(v: float) -> float:
        return round(x0 + (x1 - x0) * min(max(v, 0.0), xmax) / xmax, 2)

    e = html.escape
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
             f'role="img" aria-label="latency per report">']
    step = _nice_step(xmax)
    tick = 0.0
    while tick <= xmax + 1e-12:
        tx = x(tick)
        parts.append(f'<line x1="{tx}" y1="{TOP - 6}" x2="{tx}" y2="{height - BOTTOM}" class="grid"/>'
                     f'<text x="{tx}" y="{height - BOTTOM + 18}" class="tick">{tick:g}</text>')
        tick += step
    parts.append(f'<text x="{(x0 + x1) / 2}" y="{height - 8}" class="axis">latency per inference (ms)</text>')
    bin_w = (x1 - x0) / BINS
    for i, row in enumerate(rows):
        top = TOP + i * ROW_H
        if row.baseline:
            parts.append(f'<rect x="8" y="{top + 2}" width="{WIDTH - 16}" height="{ROW_H - 6}" class="base"/>')
        parts.append(f'<text x="16" y="{top + 22}" class="label">{e(row.label)}</text>'
                     f'<text x="16" y="{top + 40}" class="sub">{e(row.sub)}</text>')
        base, hist_h = top + 30, 22
        for b, h in enumerate(row.hist):
            if h > 0:
                parts.append(f'<rect x="{round(x0 + b * bin_w, 2)}" y="{round(base - h * hist_h, 2)}" '
                             f'width="{round(bin_w - 1, 2)}" height="{round(h * hist_h, 2)}" fill="{row.color}" '
                             f'fill-opacity="0.35"/>')
        mid = top + 42
        parts.append(f'<rect x="{x0}" y="{top + 34}" width="{round(x(row.p50) - x0, 2)}" height="16" fill="{row.color}">'
                     f'<title>{e(row.note)}, {e(row.note2)}</title></rect>')
        parts.append(f'<line x1="{x(row.p50)}" y1="{mid}" x2="{x(row.p99)}" y2="{mid}" class="whisker"/>')
        for v, h in ((row.p90, 5), (row.p99, 8)):
            parts.append(f'<line x1="{x(v)}" y1="{mid - h}" x2="{x(v)}" y2="{mid + h}" class="whisker"/>')
        parts.append(f'<text x="{x1 + 12}" y="{top + 28}" class="note">{e(row.note)}</text>'
                     f'<text x="{x1 + 12}" y="{top + 44}" class="sub">{e(row.note2)}</text>')
    parts.append("</svg>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem;color:#222;max-width:1200px}
h1{font-size:1.4rem}table{border-collapse:collapse;margin:1rem 0;font-size:.9rem}
th,td{border-bottom:1px solid #ddd;padding:.35rem .6rem;text-align:right;white-space:nowrap}
th{background:#f3f5f8}td.l,th.l{text-align:left}tr.base td{background:#f5f7fa;font-weight:600}
.better{color:#23803f}.worse{color:#b8443f}.same{color:#888}.notes{color:#8a5a00}
svg text{font-family:inherit}svg .grid{stroke:#e4e4e4}svg .tick{font-size:11px;fill:#666;text-anchor:middle}
svg .axis{font-size:12px;fill:#444;text-anchor:middle}svg .label{font-size:13px;fill:#222}
svg .sub{font-size:11px;fill:#666}svg .note{font-size:11px;fill:#333}svg .whisker{stroke:#333;stroke-width:2}
svg .base{fill:#f5f7fa}footer{color:#777;font-size:.8rem;margin-top:2rem}
"""


def _cell(key: str, entry: CompareEntry, baseline: bool) -> str:
    value = entry.metrics.get(key)
    if value is None:
        return "<td>—</td>"
    text = human_bytes(value) if key.endswith("_bytes") else f"{value:.1f}" if key == "fps" else f"{value:.3f}"
    ratio = entry.ratios.get(key)
    if baseline or ratio is None:
        return f"<td>{html.escape(text)}</td>"
    lower_better = COMPARE_METRICS[key][2]
    better = ratio < 1 if lower_better else ratio > 1
    cls = "same" if abs(ratio - 1) <= 0.02 else "better" if better else "worse"
    return f'<td>{html.escape(text)} <span class="{cls}">({ratio:.2f}×)</span></td>'


def render_html(result: CompareResult, title: str = "edgeq compare", generated: str = "") -> str:
    """A self-contained HTML page: the comparison table, the latency chart (inline SVG) and notes."""
    def e(value: object) -> str:
        return html.escape(safe_str(value))

    head = "".join(f'<th class="l">{c}</th>' for c in ("#", "device", "model", "mode", "backend")) + "<th>threads</th>"
    head += "".join(f"<th>{e(label)}{' (ms)' if unit == 'ms' else ''}</th>" for label, unit, _ in COMPARE_METRICS.values())
    body = []
    for i, entry in enumerate(result.entries):
        base = i == result.baseline
        cells = (f'<td class="l">{i + 1}{"*" if base else ""}</td><td class="l">{e(entry.device)}</td>'
                 f'<td class="l">{e(entry.model)}</td><td class="l">{e(entry.mode)}</td><td class="l">{e(entry.backend)}</td>'
                 f"<td>{entry.threads}</td>" + "".join(_cell(k, entry, base) for k in COMPARE_METRICS))
        body.append(f'<tr{" class=base" if base else ""}>{cells}</tr>')
    notes = "".join(f"<li>{e(n)}</li>" for n in result.notes)
    sources = "".join(f"<li>{i + 1}: {e(entry.source)}</li>" for i, entry in enumerate(result.entries))
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>'
        f'<meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style></head><body>'
        f"<h1>{e(title)}</h1>"
        f'<table id="comparison"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
        "<p>* baseline. (n×) is the value divided by the baseline's; green is better, red worse. "
        "Memory is the peak RSS increase of a fresh process that loads and runs the model.</p>"
        f"{render_svg(result)}"
        f'{f"<ul class=notes>{notes}</ul>" if notes else ""}'
        f"<h2>Reports</h2><ul>{sources}</ul>"
        f"<footer>made by edgeq compare{(' on ' + e(generated)) if generated else ''}; "
        "bars: median latency, whiskers: p90 and p99, shaded: histogram of every timed run.</footer>"
        "</body></html>\n"
    )


def titles(entries: Sequence[CompareEntry]) -> str:
    """A page title naming the devices compared."""
    devices = list(dict.fromkeys(e.device for e in entries))
    return safe_str("edgeq compare: " + (" vs ".join(devices[:4]) + (" …" if len(devices) > 4 else "")))
