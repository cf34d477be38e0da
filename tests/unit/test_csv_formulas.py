"""CSV exports (api/csv_export.py): a text cell Excel would run as a formula is written as text."""

from __future__ import annotations

import csv
import io

from api.csv_export import csv_bytes


def test_a_cell_starting_like_a_formula_is_written_as_text_and_numbers_stay_numbers() -> None:
    rows = [('=HYPERLINK("http://x.example","量子")', -5000, "+81 3", "@SUM(A1)", "-reversal", "量子センサー")]
    text = csv_bytes(("title", "amount", "phone", "at", "memo", "plain"), rows).decode("utf-8-sig")
    read = list(csv.reader(io.StringIO(text, newline="")))
    assert read[1] == [
        '\'=HYPERLINK("http://x.example","量子")',
        "-5000",
        "'+81 3",
        "'@SUM(A1)",
        "'-reversal",
        "量子センサー",
    ]
