"""Inline SVG charts, rendered on the server (no chart library, no script, nothing fetched).

The console's pages run under a Content-Security-Policy without inline styles or scripts, so the
charts use presentation attributes and CSS classes only. Every piece of text that reaches the SVG
(labels, titles) goes through ``markupsafe.escape``; numbers are formatted here. Each bar carries
``data-label``/``data-value`` so tests (and curious analysts) can read the plotted values.
"""

from __future__ import annotations

import dataclasses
import math

from markupsafe import Markup, escape


@dataclasses.dataclass(frozen=True, slots=True)
class Bar:
    label: str  # x-axis label, e.g. "03-02" or "14h"
    value: float
    title: str = ""  # tooltip, e.g. "2026-03-02: 120 requests"
    highlight: bool = False  # the day of the alert


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:.1f}"


def nice_max(value: float) -> float:
    """A round axis maximum >= value (1, 2, 2.5, 5 x 10^n)."""
    if value <= 0:
        return 1.0
    exp = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def bar_chart(
    bars: list[Bar],
    *,
    title: str,
    band: tuple[float, float] | None = None,
    reference: float | None = None,
    reference_label: str = "",
    band_label: str = "",
    width: int = 720,
    height: int = 220,
    label_every: int = 1,
) -> Markup:
    """A bar chart with an optional "usual range" band and a reference line (e.g. usual daily max)."""
    left, right, top, bottom = 44, 10, 14, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max([b.value for b in bars] + [band[1] if band else 0, reference or 0])
    ymax = nice_max(peak)

    def y(v: float) -> float:
        return top + plot_h - (v / ymax) * plot_h

    slot = plot_w / max(len(bars), 1)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):  # horizontal grid and y ticks
        v = ymax * i / 4
        out.append(f'<line class="grid" x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}"/>')
        out.append(f'<text class="tick" x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{_num(v)}</text>')
    if band is not None:
        lo, hi = band
        out.append(
            f'<rect class="usual" x="{left}" width="{plot_w}" y="{y(hi):.1f}" '
            f'height="{max(y(lo) - y(hi), 1.5):.1f}"><title>{escape(band_label)}</title></rect>'
        )
    for i, b in enumerate(bars):
        h = max(y(0) - y(b.value), 0 if b.value <= 0 else 1)
        x = left + i * slot + slot * 0.15
        cls = "bar bar-alert" if b.highlight else "bar"
        out.append(
            f'<rect class="{cls}" x="{x:.1f}" y="{y(0) - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" '
            f'data-label="{escape(b.label)}" data-value="{_num(b.value)}">'
            f"<title>{escape(b.title or f'{b.label}: {_num(b.value)}')}</title></rect>"
        )
        if i % max(label_every, 1) == 0 or b.highlight:
            out.append(
                f'<text class="xlabel" x="{left + i * slot + slot / 2:.1f}" y="{height - 10}" '
                f'text-anchor="middle">{escape(b.label)}</text>'
            )
    if reference is not None:
        out.append(
            f'<line class="reference" x1="{left}" x2="{width - right}" y1="{y(reference):.1f}" '
            f'y2="{y(reference):.1f}"><title>{escape(reference_label)}</title></line>'
        )
    out.append(f'<line class="axis" x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>')
    out.append("</svg>")
    return Markup("".join(out))
