"""Display formatting for the server-rendered pages: yen, JST dates, fiscal years, language.

Pure functions, no I/O. Everything is shown in Japan Standard Time whatever the server's
clock says, because deadlines and fiscal years are Japanese. Money is integer yen and is
never passed through float.
"""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, localcontext
from typing import Literal

from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal

from domain.fiscal import fiscal_year as _domain_fiscal_year

Lang = Literal["ja", "en"]
LANGS: tuple[Lang, ...] = ("ja", "en")
DEFAULT_LANG: Lang = "ja"

JST = zoneinfo.ZoneInfo("Asia/Tokyo")

# Babel locales used for separators and month names. Explicit patterns below keep the
# output stable across CLDR releases; the locale only supplies symbols and month names.
_BABEL_LOCALE: dict[Lang, str] = {"ja": "ja_JP", "en": "en_US"}

_OKU = 100_000_000  # 1億 = 10^8 yen
_ONE_DECIMAL = Decimal("0.1")

_DATETIME_PATTERN: dict[Lang, str] = {
    "ja": "yyyy'年'M'月'd'日' HH:mm 'JST'",
    "en": "d MMM yyyy, HH:mm 'JST'",
}
_DATE_PATTERN: dict[Lang, str] = {
    "ja": "yyyy'年'M'月'd'日'",
    "en": "d MMM yyyy",
}


def _grouped(number: int | Decimal, lang: Lang) -> str:
    """Digits with the locale's grouping. Babel quantizes in the current decimal context,
    whose default 28-digit precision would raise for very large sums, so widen it."""
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, len(str(number)) + 4)
        return format_decimal(number, locale=_BABEL_LOCALE[lang])


def yen(amount: int, lang: Lang) -> str:
    """Integer yen with thousands separators: ja "1,234,567円", en "¥1,234,567".

    A negative amount keeps its sign in front: ja "-1,234円", en "-¥1,234".
    """
    sign = "-" if amount < 0 else ""
    digits = _grouped(abs(amount), lang)
    if lang == "ja":
        return f"{sign}{digits}円"
    return f"{sign}¥{digits}"


def yen_large(amount: int, lang: Lang) -> str:
    """Large sums in units of 1億 (10^8) yen: ja "12.3億円", en "12.3 × 100M JPY".

    One decimal, rounded half up (away from zero) with Decimal arithmetic, and a trailing
    ".0" dropped ("100億円"). Amounts whose magnitude is below 1億 fall back to `yen`, so a
    small budget line is never shown as "0.1億円". Negative amounts are treated
    symmetrically ("-12.3億円").
    """
    if abs(amount) < _OKU:
        return yen(amount, lang)
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, len(str(abs(amount))) + 2)  # exact for any size of int, as above
        units = Decimal(amount).scaleb(-8).quantize(_ONE_DECIMAL, rounding=ROUND_HALF_UP)
        if units == units.to_integral_value():
            units = units.quantize(Decimal(1))
    number = _grouped(units, lang)
    if lang == "ja":
        return f"{number}億円"
    return f"{number} × 100M JPY"


def _to_jst(value: datetime) -> datetime:
    """A naive datetime is UTC, the database's convention; an aware one is converted."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST)


def jst_datetime(value: datetime, lang: Lang) -> str:
    """ja "2026年11月30日 19:05 JST", en "30 Nov 2026, 19:05 JST"."""
    return format_datetime(_to_jst(value), _DATETIME_PATTERN[lang], tzinfo=JST, locale=_BABEL_LOCALE[lang])


def _jst_day(value: date | datetime) -> date:
    # datetime is a subclass of date, so test for it first.
    if isinstance(value, datetime):
        return _to_jst(value).date()
    return value


def jst_date(value: date | datetime, lang: Lang) -> str:
    """ja "2026年11月30日", en "30 Nov 2026". A datetime is converted to JST first; a date is
    taken as already being a Japanese calendar day."""
    return format_date(_jst_day(value), _DATE_PATTERN[lang], locale=_BABEL_LOCALE[lang])


def fiscal_year(value: date | datetime) -> int:
    """The Japanese fiscal year (1 April - 31 March) of the JST day of `value`.

    Delegates to `domain.fiscal.fiscal_year` so pages and workflows agree; this only adds the
    JST conversion, which matters: 2027-03-31 23:30 UTC is already 1 April (FY2027) in Japan.
    """
    return _domain_fiscal_year(_jst_day(value))


def fiscal_year_label(fy: int, lang: Lang) -> str:
    """ja "2026年度", en "FY2026"."""
    if lang == "ja":
        return f"{fy}年度"
    return f"FY{fy}"


# RFC 9110 qvalue: "0" to "1" with at most three decimals. Anything else (e.g. "abc", "nan",
# "2") makes the entry malformed and it is ignored rather than guessed at.
_QVALUE = re.compile(r"(?:0(?:\.\d{0,3})?|1(?:\.0{0,3})?)")
_LANGUAGE_RANGE = re.compile(r"[A-Za-z]{1,8}(?:[-_][A-Za-z0-9]{1,8})*")


def _as_lang(value: str) -> Lang | None:
    code = value.strip().lower()
    for lang in LANGS:
        if code == lang:
            return lang
    return None


def _accept_language(header: str) -> list[tuple[str, float]]:
    """(primary subtag, q) pairs of a well-formed Accept-Language header, malformed entries
    dropped, in header order."""
    ranges: list[tuple[str, float]] = []
    for entry in header.split(","):
        tag, *params = (part.strip() for part in entry.split(";"))
        if not _LANGUAGE_RANGE.fullmatch(tag):
            continue  # empty, "*" (which asks for nothing in particular), or junk
        q = 1.0
        valid = True
        for param in params:
            name, sep, raw = param.partition("=")
            if name.strip().lower() != "q":
                continue  # other parameters are not defined; ignore them
            raw = raw.strip()
            if not sep or not _QVALUE.fullmatch(raw):
                valid = False
                break
            q = float(raw)
        if valid and q > 0:  # q=0 means "not acceptable"
            ranges.append((re.split(r"[-_]", tag, maxsplit=1)[0].lower(), q))
    return ranges


def negotiate(accept_language: str | None, preferred: str | None) -> Lang:
    """The page language: a user's remembered `preferred` choice when it is one of LANGS,
    else the Accept-Language entry of highest q that we support ("en-GB" counts as "en",
    ties go to the earlier entry), else DEFAULT_LANG. Never raises on malformed input."""
    if preferred is not None:
        chosen = _as_lang(preferred)
        if chosen is not None:
            return chosen
    if accept_language:
        # sorted() is stable, so equal q-values keep the header's order.
        for primary, _q in sorted(_accept_language(accept_language), key=lambda r: -r[1]):
            lang = _as_lang(primary)
            if lang is not None:
                return lang
    return DEFAULT_LANG
