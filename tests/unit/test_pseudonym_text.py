"""How a view's text is rewritten for a reader who may not read some closed projects: every hidden
id where it stands as an id (alone, after a prefix, inside a workflow id), the longest known id
first, nothing touched by letters or digits, and other text as it was."""

from __future__ import annotations

from api.pseudonyms import Pseudonyms

HIDDEN = {"KP-7": "closed-aaaa", "KP-2026-0001": "closed-bbbb"}
KNOWN = {"KP-7-B", "KP-2026-0002"}  # an open id that begins with a hidden one; a readable closed one


def names() -> Pseudonyms:
    return Pseudonyms(dict(HIDDEN), set(KNOWN))


def test_a_hidden_id_is_replaced_wherever_it_stands_as_an_id() -> None:
    n = names()
    assert n.text("KP-7") == "closed-aaaa"
    assert n.text("pay:KP-2026-0001:1:2") == "pay:closed-bbbb:1:2"
    assert (
        n.text("project-KP-7-gate-1 and reservation:KP-7") == "project-closed-aaaa-gate-1 and reservation:closed-aaaa"
    )
    assert n.text('{"project": "KP-7", "note": "案件KP-2026-0001を"}') == (
        '{"project": "closed-aaaa", "note": "案件closed-bbbbを"}'
    )


def test_a_longer_id_beginning_with_a_hidden_one_stays_whole() -> None:
    n = names()
    assert n.text("handoff:KP-7-B-MOD") == "handoff:KP-7-B-MOD"
    assert n.text("KP-7-B, KP-7") == "KP-7-B, closed-aaaa"
    assert n.text("KP-2026-0002 KP-2026-0001") == "KP-2026-0002 closed-bbbb"


def test_an_id_touched_by_a_letter_or_digit_is_not_an_id() -> None:
    n = names()
    assert n.text("KP-7B KP-70 XKP-7 KP-2026-00011") == "KP-7B KP-70 XKP-7 KP-2026-00011"


def test_a_filter_names_a_project_by_its_pseudonym_only() -> None:
    n = names()
    assert n.resolve("closed-aaaa") == "KP-7"
    assert n.resolve("KP-7") is None
    assert n.resolve("KP-9") == "KP-9"


def test_without_hidden_projects_the_text_is_untouched() -> None:
    assert Pseudonyms({}, {"KP-1"}).text("KP-1") == "KP-1"
