"""The inline SVG chart: values on the bars, the usual range, and escaped text."""

from __future__ import annotations

import re

import pytest

from gateway.console.chart import Bar, bar_chart, nice_max


def test_each_bar_carries_its_value_and_the_highlight():
    svg = bar_chart([Bar("03-01", 5), Bar("03-02", 0), Bar("03-03", 40, highlight=True)], title="t")
    assert re.findall(r'data-value="(\d+)"', svg) == ["5", "0", "40"]
    assert svg.count("bar-alert") == 1


def test_bars_scale_against_a_round_axis_maximum():
    svg = bar_chart([Bar("a", 50), Bar("b", 100)], title="t", height=220)
    heights = [float(h) for h in re.findall(r'class="bar[^"]*"[^>]*height="([\d.]+)"', svg)]
    assert heights[1] == pytest.approx(2 * heights[0])


def test_the_usual_range_and_reference_line_are_drawn():
    svg = bar_chart([Bar("a", 1)], title="t", band=(2, 8), reference=10)
    assert 'class="usual"' in svg and 'class="reference"' in svg


def test_text_is_escaped():
    svg = bar_chart([Bar("<script>x</script>", 1, title='"><img src=x>')], title="<b>t</b>")
    assert "<script>" not in svg and "<img" not in svg and "<b>" not in svg
    assert "&lt;script&gt;" in svg


@pytest.mark.parametrize("value,expected", [(0, 1), (0.7, 1), (3, 5), (17, 20), (120, 200), (1000, 1000)])
def test_nice_max(value, expected):
    assert nice_max(value) == expected
