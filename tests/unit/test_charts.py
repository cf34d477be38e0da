"""The money charts' y axis carries a scale whatever the figures (pygal alone labelled a 0-365
億円 axis with "0" only)."""

from __future__ import annotations

import base64
import re

import pytest

from web import charts

_YEARS = [f"FY{y}" for y in range(2026, 2036)]


def _y_labels(data_url: str) -> list[float]:
    svg = base64.b64decode(data_url.split(",", 1)[1]).decode()
    axis = re.search(r'class="axis y[^"]*">(.*?)</g></g></g>', svg, re.S)
    assert axis is not None
    return [float(t) for t in re.findall(r"<text[^>]*>([0-9.]+)</text>", axis.group(1))]


@pytest.mark.parametrize(
    ("amounts", "expected"),
    [
        ([36_500_000_000, 23_000_000_000, 2_000_000_000] + [0] * 7, [0, 100, 200, 300, 400]),
        ([15_500_000_000, 10_000_000_000] + [0] * 8, [0, 50, 100, 150, 200]),
    ],
)
def test_forecast_chart_has_a_scale(amounts: list[int], expected: list[float]) -> None:
    url = charts.side_by_side_years("t", "y", _YEARS, [("ceiling", [None] * 10), ("committed", amounts)])
    assert _y_labels(url) == expected


def test_stacked_chart_scale_reaches_the_tallest_stack() -> None:
    url = charts.stacked_years(
        "t", "y", _YEARS[:3], [("paid", [15_000_000_000, 0, 0]), ("reserved", [6_000_000_000, 13_000_000_000, 0])]
    )
    assert _y_labels(url) == [0, 50, 100, 150, 200, 250]


def test_empty_chart_still_has_an_axis() -> None:
    assert _y_labels(charts.side_by_side_years("t", "y", _YEARS[:2], [("a", [0, 0])])) == [0, 1]


def test_a_chart_of_a_few_yen_still_draws() -> None:
    # 1 yen is 1e-8 億円: the scale must not round to a single 0 (pygal then fails on a zero range).
    assert _y_labels(charts.side_by_side_years("t", "y", _YEARS[:2], [("a", [1, 1])]))[-1] > 0


def test_ten_years_are_labelled_level_every_other_year() -> None:
    # Slanted Japanese labels ran into the legend below (pygal sizes them as Latin text).
    labels = [f"{y}年度" for y in range(2026, 2036)]
    svg = base64.b64decode(charts.side_by_side_years("t", "y", labels, [("a", [10**9] * 10)]).split(",", 1)[1]).decode()
    axis = re.search(r'class="axis x[^"]*">(.*?)</g></g></g>', svg, re.S)
    assert axis is not None
    texts = re.findall(r"<text([^>]*)>([^<]*)</text>", axis.group(1))
    assert [t for _, t in texts] == labels[::2]
    assert not any("rotate" in attrs for attrs, _ in texts)
