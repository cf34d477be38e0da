"""Every text the pages show has its Japanese translation, with the same placeholders."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(__file__).parents[2] / "web"
PLACEHOLDER = re.compile(r"%\((\w+)\)s")


def _extracted() -> set[str]:
    found = set()
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    options = {"templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for _file, _line, message, _comments, _context in extract_from_dir(WEB, method_map, options):
        found.add(message if isinstance(message, str) else message[0])
    return found


def test_each_text_is_in_the_catalog_once() -> None:
    # Babel keeps the last of two entries silently: one text would show one translation everywhere.
    ids = re.findall(r'^msgid "(.+)"$', (WEB / "locale/ja/LC_MESSAGES/messages.po").read_text(), flags=re.M)
    assert sorted(i for i in set(ids) if ids.count(i) > 1) == []


def test_every_page_text_is_translated_into_japanese_with_its_placeholders() -> None:
    with (WEB / "locale/ja/LC_MESSAGES/messages.po").open("rb") as f:
        catalog = read_po(f)
    texts = _extracted()
    assert len(texts) > 40  # the extraction found the templates
    missing = sorted(t for t in texts if not (catalog.get(t) and catalog.get(t).string))
    assert missing == []
    for message in catalog:
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        wanted = set(PLACEHOLDER.findall(ids[0]))
        assert all(set(PLACEHOLDER.findall(s)) == wanted for s in strings), message.id
