"""Charts drawn on the server as SVG by pygal, shown as an <img> (a data: address, which the pages'
Content-Security-Policy allows; an inline <svg> would need inline styles it forbids). Nothing loads
from elsewhere: pygal's tooltip script (from a CDN by default) is switched off with `js=[]`, its CSS
is inlined, and an image runs no script anyway. Each chart has a table beside it on the page with the
same figures, for screen readers and for copying."""

from __future__ import annotations

import base64
from collections.abc import Sequence

import pygal
from pygal.style import Style

_LABEL_MAX = 20
_STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1a1a1a",
    foreground_strong="#1a1a1a",
    foreground_subtle="#555555",
    colors=("#0b4f8a",),
    font_family='system-ui, "Hiragino Sans", "Noto Sans CJK JP", sans-serif',
    label_font_size=13,
    major_label_font_size=13,
    value_font_size=13,
    title_font_size=16,
)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int], horizontal: bool = False) -> str:
    """A bar chart of counts as a data: address of its SVG."""
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    chart = kind(
        style=_STYLE,
        js=[],  # no tooltip script from the CDN
        show_legend=False,
        print_values=True,
        width=640,
        height=320 if not horizontal else max(160, 40 * len(labels) + 80),
        margin=12,
        # pygal measures labels as Latin text: room for a Japanese one on the left of a horizontal chart.
        margin_left=min(280, 14 * max((len(label) for label in labels), default=0)) if horizontal else 12,
        truncate_label=-1,
        min_scale=1,
        max_scale=10,
    )
    chart.title = title
    chart.x_labels = [label if len(label) <= _LABEL_MAX else label[: _LABEL_MAX - 1] + "…" for label in labels]
    # Whole projects: integer ticks (pygal would divide a small axis into fractions).
    step = max(1, -(-max([*values, 1]) // 8))
    chart.y_labels = list(range(0, max([*values, 1]) + step, step))
    chart.add(title, list(values))
    svg: bytes = chart.render()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")
