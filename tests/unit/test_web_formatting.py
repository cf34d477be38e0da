"""web.formatting and web.i18n: pure formatting, language negotiation and in-memory catalogs."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from gettext import NullTranslations
from pathlib import Path

import jinja2
import pytest

from web import i18n
from web.formatting import (
    DEFAULT_LANG,
    JST,
    LANGS,
    fiscal_year,
    fiscal_year_label,
    jst_date,
    jst_datetime,
    negotiate,
    yen,
    yen_large,
)

# --- yen ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "ja", "en"),
    [
        (0, "0円", "¥0"),
        (999, "999円", "¥999"),
        (1_000, "1,000円", "¥1,000"),
        (1_234_567, "1,234,567円", "¥1,234,567"),
        (-1_234, "-1,234円", "-¥1,234"),
        (99_999_999, "99,999,999円", "¥99,999,999"),
        (10**30, "1,000,000,000,000,000,000,000,000,000,000円", "¥1,000,000,000,000,000,000,000,000,000,000"),
    ],
)
def test_yen(amount: int, ja: str, en: str) -> None:
    assert yen(amount, "ja") == ja
    assert yen(amount, "en") == en


@pytest.mark.parametrize(
    ("amount", "ja", "en"),
    [
        (0, "0円", "¥0"),
        (99_999_999, "99,999,999円", "¥99,999,999"),  # just below 1億: plain yen
        (100_000_000, "1億円", "1 × 100M JPY"),
        (1_234_567_890, "12.3億円", "12.3 × 100M JPY"),
        (10_000_000_000, "100億円", "100 × 100M JPY"),  # trailing .0 dropped
        (1_225_000_000, "12.3億円", "12.3 × 100M JPY"),  # half up, not banker's (12.2)
        (1_224_999_999, "12.2億円", "12.2 × 100M JPY"),
        (999_950_000, "10億円", "10 × 100M JPY"),  # rounds up to a whole number
        (123_456_789_000_000, "1,234,567.9億円", "1,234,567.9 × 100M JPY"),
        (-1_234_567_890, "-12.3億円", "-12.3 × 100M JPY"),
        (-99_999_999, "-99,999,999円", "-¥99,999,999"),
    ],
)
def test_yen_large(amount: int, ja: str, en: str) -> None:
    assert yen_large(amount, "ja") == ja
    assert yen_large(amount, "en") == en


def test_yen_large_is_exact_beyond_float_precision() -> None:
    # 2^53 + 1 yen is not representable as a float; Decimal keeps it exact.
    amount = 2**53 + 1  # 90,071,992.54740993 億
    assert yen_large(amount, "ja") == "90,071,992.5億円"
    assert yen_large(5_000_000_000_000_000_050_000_000, "ja") == "50,000,000,000,000,000.5億円"
    assert yen_large(10**40 + 5 * 10**7, "en") == "100,000,000,000,000,000,000,000,000,000,000.5 × 100M JPY"


# --- dates ----------------------------------------------------------------------------


def test_jst_datetime_from_aware_utc() -> None:
    value = datetime(2026, 11, 30, 10, 5, tzinfo=UTC)
    assert jst_datetime(value, "ja") == "2026年11月30日 19:05 JST"
    assert jst_datetime(value, "en") == "30 Nov 2026, 19:05 JST"


def test_jst_datetime_naive_is_utc() -> None:
    assert jst_datetime(datetime(2026, 11, 30, 10, 5), "ja") == "2026年11月30日 19:05 JST"


def test_jst_datetime_other_zone_and_day_rollover() -> None:
    # 23:30 UTC on 31 March is 08:30 on 1 April in Japan.
    assert jst_datetime(datetime(2027, 3, 31, 23, 30, tzinfo=UTC), "ja") == "2027年4月1日 08:30 JST"
    new_york = timezone(timedelta(hours=-5))
    assert jst_datetime(datetime(2026, 1, 1, 0, 0, tzinfo=new_york), "en") == "1 Jan 2026, 14:00 JST"


def test_jst_datetime_already_jst() -> None:
    assert jst_datetime(datetime(2026, 4, 1, 0, 0, tzinfo=JST), "en") == "1 Apr 2026, 00:00 JST"


def test_jst_date() -> None:
    assert jst_date(date(2026, 11, 30), "ja") == "2026年11月30日"
    assert jst_date(date(2026, 11, 30), "en") == "30 Nov 2026"
    assert jst_date(date(2026, 4, 1), "en") == "1 Apr 2026"
    # A datetime is converted to JST first: the next day in Japan.
    assert jst_date(datetime(2027, 3, 31, 23, 30, tzinfo=UTC), "ja") == "2027年4月1日"
    assert jst_date(datetime(2027, 3, 31, 23, 30), "en") == "1 Apr 2027"
    # A plain date is taken as is (no time zone shift).
    assert jst_date(date(2027, 3, 31), "en") == "31 Mar 2027"


# --- fiscal years ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fy"),
    [
        (date(2027, 3, 31), 2026),
        (date(2027, 4, 1), 2027),
        (date(2026, 4, 1), 2026),
        (date(2026, 12, 31), 2026),
        (date(2027, 1, 1), 2026),
        # 31 March 23:30 UTC is 1 April in JST: the new fiscal year has begun.
        (datetime(2027, 3, 31, 23, 30, tzinfo=UTC), 2027),
        (datetime(2027, 3, 31, 23, 30), 2027),  # naive = UTC
        (datetime(2027, 3, 31, 14, 59, tzinfo=UTC), 2026),  # 23:59 JST on 31 March
        (datetime(2027, 3, 31, 15, 0, tzinfo=UTC), 2027),  # 00:00 JST on 1 April
        (datetime(2027, 3, 31, 23, 30, tzinfo=JST), 2026),
    ],
)
def test_fiscal_year(value: date, fy: int) -> None:
    assert fiscal_year(value) == fy


def test_fiscal_year_label() -> None:
    assert fiscal_year_label(2026, "ja") == "2026年度"
    assert fiscal_year_label(2026, "en") == "FY2026"


# --- language negotiation -------------------------------------------------------------


def test_langs() -> None:
    assert LANGS == ("ja", "en")
    assert DEFAULT_LANG == "ja"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "ja"),
        ("", "ja"),
        (";;;", "ja"),
        (",,,", "ja"),
        ("xx", "ja"),
        ("*", "ja"),
        ("en;q=abc", "ja"),  # malformed entry ignored
        ("en;q=abc, ja;q=0.1", "ja"),
        ("en;q=nan", "ja"),
        ("en;q=2", "ja"),
        ("en;q=-1", "ja"),
        ("en;q=", "ja"),
        ("en;q", "ja"),
        ("en;q=0", "ja"),  # q=0 means not acceptable
        ("en", "en"),
        ("EN", "en"),
        ("en-GB", "en"),
        ("en_US", "en"),
        ("ja-JP", "ja"),
        ("ja;q=0.5, en;q=0.9", "en"),
        ("en;q=0.5, ja;q=0.9", "ja"),
        ("fr-FR, fr;q=0.9, en-US;q=0.8, ja;q=0.7", "en"),
        ("de, xx, en;q=0.1", "en"),
        ("en, ja", "en"),  # equal q: header order
        ("ja, en", "ja"),
        ("en-GB;q=0.8, ja;q=0.800", "en"),
        ("  en-gb ; q=0.8 ,ja;q=0.7 ", "en"),
        ("en;Q=0.9;level=1, ja;q=0.5", "en"),
        ("日本語, en", "en"),
        ("en-" + "x" * 5000, "ja"),
    ],
)
def test_negotiate_header(header: str | None, lang: str) -> None:
    assert negotiate(header, None) == lang


@pytest.mark.parametrize(
    ("header", "preferred", "lang"),
    [
        ("ja", "en", "en"),  # remembered choice beats the header
        ("en", "ja", "ja"),
        (None, "en", "en"),
        ("en", "EN ", "en"),
        ("en", "fr", "en"),  # junk preference: header decides
        ("en", "", "en"),
        ("en", "en-GB<script>", "en"),
        (None, "xx", "ja"),
        ("ja;q=0.5, en;q=0.9", None, "en"),
    ],
)
def test_negotiate_preferred(header: str | None, preferred: str | None, lang: str) -> None:
    assert negotiate(header, preferred) == lang


# --- i18n -----------------------------------------------------------------------------

JA_PO = """\
# A tiny test catalog.
msgid ""
msgstr ""
"Project-Id-Version: trlgate\\n"
"Language: ja\\n"
"MIME-Version: 1.0\\n"
"Content-Type: text/plain; charset=UTF-8\\n"
"Content-Transfer-Encoding: 8bit\\n"
"Plural-Forms: nplurals=1; plural=0;\\n"

msgid "Sign in"
msgstr "ログイン"

msgid "Welcome, %(name)s"
msgstr "ようこそ、%(name)sさん"

#, fuzzy
msgid "Sign out"
msgstr "ログアウト（要確認）"

msgid "Untranslated"
msgstr ""

msgid "%(num)d project"
msgid_plural "%(num)d projects"
msgstr[0] "%(num)d件のプロジェクト"

msgid "Progress: 100%%"
msgstr "進捗：100%%"
"""


@pytest.fixture
def locale_dir(tmp_path: Path) -> Path:
    po = i18n.catalog_path(tmp_path, "ja")
    po.parent.mkdir(parents=True)
    po.write_text(JA_PO, encoding="utf-8")
    return tmp_path


@pytest.fixture
def ja(locale_dir: Path) -> Iterator[NullTranslations]:
    translations = i18n.load_translations(locale_dir)["ja"]
    token = i18n.use(translations)
    yield translations
    i18n.reset(token)


def test_load_translations_languages(locale_dir: Path) -> None:
    loaded = i18n.load_translations(locale_dir)
    assert set(loaded) == set(LANGS)
    assert type(loaded["en"]) is NullTranslations  # English is the source language
    assert loaded["ja"].gettext("Sign in") == "ログイン"


def test_gettext_through_use(ja: NullTranslations) -> None:
    assert i18n.gettext("Sign in") == "ログイン"
    assert i18n.gettext("Welcome, %(name)s", name="山田") == "ようこそ、山田さん"
    assert i18n.current() is ja


def test_fuzzy_and_untranslated_entries_are_not_applied(ja: NullTranslations) -> None:
    assert i18n.gettext("Sign out") == "Sign out"
    assert i18n.gettext("Untranslated") == "Untranslated"
    assert i18n.gettext("Not in the catalog") == "Not in the catalog"


def test_ngettext(ja: NullTranslations) -> None:
    assert i18n.ngettext("%(num)d project", "%(num)d projects", 1) == "1件のプロジェクト"
    assert i18n.ngettext("%(num)d project", "%(num)d projects", 3) == "3件のプロジェクト"


def test_percent_is_always_a_format_string(ja: NullTranslations) -> None:
    assert i18n.gettext("Progress: 100%%") == "進捗：100%"


def test_default_is_english() -> None:
    assert isinstance(i18n.current(), NullTranslations)
    assert i18n.gettext("Sign in") == "Sign in"
    assert i18n.gettext("Welcome, %(name)s", name="山田") == "Welcome, 山田"
    assert i18n.ngettext("%(num)d project", "%(num)d projects", 1) == "1 project"
    assert i18n.ngettext("%(num)d project", "%(num)d projects", 2) == "2 projects"


def test_use_and_reset(locale_dir: Path) -> None:
    translations = i18n.load_translations(locale_dir)
    token = i18n.use(translations["ja"])
    try:
        assert i18n.gettext("Sign in") == "ログイン"
        inner = i18n.use(translations["en"])
        assert i18n.gettext("Sign in") == "Sign in"
        i18n.reset(inner)
        assert i18n.gettext("Sign in") == "ログイン"
    finally:
        i18n.reset(token)
    assert i18n.gettext("Sign in") == "Sign in"


def test_missing_catalog_falls_back_to_english(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="web.i18n"):
        loaded = i18n.load_translations(tmp_path)
    assert loaded["ja"].gettext("Sign in") == "Sign in"
    assert any("ja" in record.getMessage() for record in caplog.records)


def test_japanese_text_round_trips(ja: NullTranslations) -> None:
    text = "技術成熟度（TRL）・審査ゲート"
    assert i18n.gettext(text) == text
    assert i18n.gettext("%(x)s", x=text) == text


def test_jinja_install_newstyle(ja: NullTranslations) -> None:
    env = jinja2.Environment(autoescape=True)
    i18n.install(env)
    template = env.from_string(
        "{% trans %}Sign in{% endtrans %}|{{ _('Sign in') }}|"
        "{% trans name=who %}Welcome, {{ name }}{% endtrans %}|"
        "{{ gettext('Welcome, %(name)s', name=who) }}|"
        "{{ ngettext('%(num)d project', '%(num)d projects', n) }}|"
        "{{ _('Sign out') }}"
    )
    rendered = template.render(who="<b>山田</b>", n=2)
    assert rendered == (
        "ログイン|ログイン|"
        "ようこそ、&lt;b&gt;山田&lt;/b&gt;さん|ようこそ、&lt;b&gt;山田&lt;/b&gt;さん|"
        "2件のプロジェクト|Sign out"
    )
    token = i18n.use(NullTranslations())
    try:
        assert template.render(who="Ann", n=1) == "Sign in|Sign in|Welcome, Ann|Welcome, Ann|1 project|Sign out"
    finally:
        i18n.reset(token)
