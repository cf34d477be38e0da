"""Charts drawn on the server as SVG by pygal, shown as an <img> from a data: address: no
JavaScript (pygal's tooltips script is switched off, `js=[]`, and the inline config script it still
writes is removed), nothing from another origin, and the page's CSP (img-src 'self' data:) holds,
since the SVG's own <style> lives inside the image (an inline <svg> would need inline styles the
CSP forbids). Each chart has a table beside it on its page with the same figures, for screen
readers and copying. Money charts are in 億 (10^8) yen, a picture's scale (the tables keep exact
yen); count charts (the portfolio dashboard) in whole projects."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence
from decimal import Decimal
from xml.etree import ElementTree

import pygal
from pygal.style import Style

_OKU = Decimal(100_000_000)
_LABEL_MAX = 20
_STYLE = Style(
    background="white",
    plot_background="white",
    foreground="#222",
    foreground_strong="#111",
    foreground_subtle="#666",
    colors=("#1f5fa8", "#e08a00", "#2e8540", "#b00020"),
    font_family='system-ui, "Hiragino Sans", "Noto Sans CJK JP", sans-serif',
    title_font_size=18,
    legend_font_size=15,
    label_font_size=13,
    major_label_font_size=13,
)


_COUNT_STYLE = Style(
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


def _oku(amount: int) -> float:
    # Only a bar's height; never money that is added up or shown as a figure.
    return float(Decimal(amount) / _OKU)


def _data_url(chart: pygal.graph.graph.Graph) -> str:
    tree = chart.render_tree()
    # pygal writes its config as an inline <script> even with js=[]: an image runs no script, and
    # the SVG carries none at all.
    for parent in list(tree.iter()):
        for child in [c for c in parent if str(c.tag).rsplit("}", 1)[-1] == "script"]:
            parent.remove(child)
    svg = ElementTree.tostring(tree, encoding="utf-8", xml_declaration=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


def _config(title: str, y_title: str, labels: Sequence[str], chart: type[pygal.graph.graph.Graph]) -> pygal.Graph:
    c = chart(
        js=[],  # no script from pygal's CDN (and none at all)
        style=_STYLE,
        title=title,
        y_title=y_title,
        width=480,
        height=340,
        legend_at_bottom=True,
        legend_at_bottom_columns=1,
        truncate_legend=-1,  # whole names: "Ceiling and carried in" is not "Ceiling and carrie…"
        truncate_label=-1,
        # Level labels, every other one when many: pygal sizes a slanted label as Latin text, so a
        # slanted "2026年度" ran into the legend below it. The table beside names every year.
        x_labels_major_every=2 if len(labels) > 5 else 1,
        show_minor_x_labels=len(labels) <= 5,
        print_values=False,
    )
    c.x_labels = list(labels)
    return c


def _money_ticks(top: float) -> list[float]:
    """About five round ticks from 0 to at least `top` (in 億円). pygal's own major labels are the
    multiples of a power of ten only, so a 0-365 axis showed "0" alone and no scale at all."""
    if top <= 0:
        return [0.0, 1.0]
    top = max(top, 0.01)  # a few yen: the ticks would round to one 0, and pygal divides by the range
    step = 10.0 ** math.floor(math.log10(top / 5))
    for factor in (1, 2, 2.5, 5, 10):
        if top / (step * factor) <= 5:
            step *= factor
            break
    return [round(i * step, 6) for i in range(math.ceil(top / step - 1e-9) + 1)]


def stacked_years(title: str, y_title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int]]]) -> str:
    """One stacked bar per fiscal year (e.g. paid, reserved, available)."""
    chart = _config(title, y_title, labels, pygal.StackedBar)
    for name, values in series:
        chart.add(name, [_oku(v) for v in values])
    chart.y_labels = _money_ticks(
        max((_oku(sum(year)) for year in zip(*(v for _, v in series), strict=True)), default=0)
    )
    return _data_url(chart)


def side_by_side_years(
    title: str, y_title: str, labels: Sequence[str], series: Sequence[tuple[str, Sequence[int | None]]]
) -> str:
    """Bars side by side per fiscal year (e.g. the limit and what is committed against it); a
    year without a figure has no bar."""
    chart = _config(title, y_title, labels, pygal.Bar)
    for name, values in series:
        chart.add(name, [None if v is None else _oku(v) for v in values])
    chart.y_labels = _money_ticks(max((_oku(v) for _, vs in series for v in vs if v is not None), default=0))
    return _data_url(chart)


def bar_chart(title: str, labels: Sequence[str], values: Sequence[int], horizontal: bool = False) -> str:
    """A bar chart of counts as a data: address of its SVG."""
    kind = pygal.HorizontalBar if horizontal else pygal.Bar
    chart = kind(
        style=_COUNT_STYLE,
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
    return _data_url(chart)
