"""Message catalogs and the current request's translations.

English is the source language (msgids are English), so "en" is `NullTranslations`. Other
languages are read from `<locale_dir>/<lang>/LC_MESSAGES/messages.po` and compiled in memory
at start-up, so installing the app needs no `pybabel compile` step and no .mo files.

The translations in effect belong to the request, not the process: they live in a
`ContextVar`, set with `use()` (and undone with `reset()`) by whoever handles the request.

Two pairs of functions read it:

- `gettext` / `ngettext` translate and then %-format with keyword variables, for Python code
  (`gettext("Signed in as %(name)s", name=user)`).
- `translate` / `ntranslate` only translate. These are what Jinja's i18n extension needs:
  with `newstyle=True`, `Environment.install_gettext_callables` wraps the callables it is
  given, calls them with the message alone, and does the %-formatting itself (after wrapping
  the message in `Markup` when autoescaping, so variables get escaped). Handing it the
  formatting `gettext` would format twice. `install()` does this wiring.
"""

from __future__ import annotations

import contextvars
import logging
from gettext import NullTranslations
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

from web.formatting import LANGS, Lang

if TYPE_CHECKING:
    import jinja2

log = logging.getLogger(__name__)

SOURCE_LANG: Lang = "en"
DOMAIN = "messages"

_NULL = NullTranslations()
_current: contextvars.ContextVar[NullTranslations] = contextvars.ContextVar("web_translations", default=_NULL)


def catalog_path(locale_dir: Path, lang: Lang) -> Path:
    return locale_dir / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


def _compile(po_file: Path, lang: Lang) -> Translations:
    """Read a .po file and compile it to an in-memory .mo. Fuzzy and untranslated entries
    are left out (babel's default), so they show the English msgid."""
    with po_file.open("rb") as fp:
        catalog = read_po(fp, locale=lang, domain=DOMAIN)
    buffer = BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return Translations(fp=buffer, domain=DOMAIN)


def load_translations(locale_dir: Path) -> dict[Lang, NullTranslations]:
    """Translations for every language in LANGS. A missing catalog logs a warning and falls
    back to English (`NullTranslations`) rather than stopping the app; a catalog that exists
    but cannot be parsed raises, so a broken file is noticed at start-up."""
    loaded: dict[Lang, NullTranslations] = {}
    for lang in LANGS:
        if lang == SOURCE_LANG:
            loaded[lang] = NullTranslations()
            continue
        po_file = catalog_path(locale_dir, lang)
        if not po_file.is_file():
            log.warning("no %s message catalog at %s: pages will be shown in English", lang, po_file)
            loaded[lang] = NullTranslations()
            continue
        loaded[lang] = _compile(po_file, lang)
    return loaded


def use(translations: NullTranslations) -> contextvars.Token[NullTranslations]:
    """Make `translations` current for this context (request); pass the token to `reset`."""
    return _current.set(translations)


def reset(token: contextvars.Token[NullTranslations]) -> None:
    _current.reset(token)


def current() -> NullTranslations:
    return _current.get()


def translate(message: str) -> str:
    """Translate only, no formatting (for Jinja's install_gettext_callables)."""
    return _current.get().gettext(message)


def ntranslate(singular: str, plural: str, n: int) -> str:
    """Translate only, no formatting (for Jinja's install_gettext_callables)."""
    return _current.get().ngettext(singular, plural, n)


def gettext(message: str, **variables: object) -> str:
    """Translate, then %-format with `variables`. Like Jinja's newstyle gettext, the result
    is always treated as a format string, so a literal percent sign is written "%%"."""
    return translate(message) % variables


def ngettext(singular: str, plural: str, n: int, **variables: object) -> str:
    """Translate by count, then %-format; `num` defaults to `n`, as in Jinja's newstyle."""
    variables.setdefault("num", n)
    return ntranslate(singular, plural, n) % variables


def install(env: jinja2.Environment) -> None:
    """Enable `{% trans %}`, `_()`, `gettext()` and `ngettext()` in templates, translated
    through the current request's translations, newstyle (autoescape-safe variables)."""
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=translate,
        ngettext=ntranslate,
        newstyle=True,
    )
