"""More server-rendered SVG charts for the dashboard: stacked bars per day and a ranked bar list.

Same rules as chart.py: presentation attributes and CSS classes only (the CSP forbids inline
styles), every text through ``markupsafe.escape``, and ``data-*`` attributes carrying the plotted
values so tests can read them. A series' key becomes a CSS class (``seg-<key>``) only after it is
reduced to ``[a-z0-9_-]``; its label is escaped text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape

from gateway.console.chart import _num, nice_max

_CLASS = re.compile(r"[^a-z0-9_-]")


def css_key(key: str) -> str:
    return _CLASS.sub("-", key.lower())[:40] or "none"


def stacked_chart(
    labels: list[str],
    series: dict[str, list[float]],
    *,
    title: str,
    width: int = 720,
    height: int = 220,
    label_every: int = 1,
) -> Markup:
    """One stacked bar per label; ``series`` maps a key to one value per label (bottom first)."""
    left, right, top, bottom = 44, 10, 14, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(labels))]
    ymax = nice_max(max(totals, default=0))
    slot = plot_w / max(len(labels), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart stacked" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        v = ymax * i / 4
        y = top + plot_h - v / ymax * plot_h
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{_num(v)}</text>')
    for i, label in enumerate(labels):
        base: float = top + plot_h
        x = left + i * slot + slot * 0.15
        for key, values in series.items():
            v = values[i]
            if v <= 0:
                continue
            h = v / ymax * plot_h
            base -= h
            out.append(
                f'<rect class="seg seg-{css_key(key)}" x="{x:.1f}" y="{base:.1f}" width="{slot * 0.7:.1f}" '
                f'height="{h:.1f}" data-label="{escape(label)}" data-series="{escape(key)}" data-value="{_num(v)}">'
                f"<title>{escape(f'{label} {key}: {_num(v)}')}</title></rect>"
            )
        if i % max(label_every, 1) == 0:
            out.append(
                f'<text class="xlabel" x="{left + i * slot + slot / 2:.1f}" y="{height - 10}" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}"/>')
    out.append("</svg>")
    return Markup("".join(out))


def ranked_bars(rows: list[tuple[str, float]], *, title: str, width: int = 480, row_h: int = 22) -> Markup:
    """Horizontal bars, one per (label, value), in the given order (a "top N" list)."""
    left, right = 150, 50
    height = max(len(rows), 1) * row_h + 8
    vmax = max((v for _, v in rows), default=0) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart ranked" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (label, value) in enumerate(rows):
        y = 4 + i * row_h
        w = max((width - left - right) * value / vmax, 1 if value > 0 else 0)
        out.append(
            f'<text class="rlabel" x="{left - 6}" y="{y + row_h * 0.65:.1f}" text-anchor="end">{escape(label[:24])}</text>'
            f'<rect class="bar" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
            f'data-label="{escape(label)}" data-value="{_num(value)}"><title>{escape(f"{label}: {_num(value)}")}</title></rect>'
            f'<text class="rvalue" x="{left + w + 4:.1f}" y="{y + row_h * 0.65:.1f}">{_num(value)}</text>'
        )
    if not rows:
        out.append(f'<text class="tick" x="{left}" y="{row_h * 0.65:.1f}">nothing in this range</text>')
    out.append("</svg>")
    return Markup("".join(out))
