"""E-mail's pure parts: which notices may be opted out of, the keyed Message-ID, the retry delays,
the sink's idea of a deliverable address, the templates in both languages, and the compose file's
Mailpit."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from activities.mail_sink import deliverable
from domain.mail import asks_to_act, message_id, retry_delay, valid_address
from storage.mail_outbox import render_mail

ROOT = Path(__file__).resolve().parents[2]


def test_only_informational_notices_may_be_opted_out_of() -> None:
    for kind in ("invitation", "reminder", "panel_complete", "decision_needed", "tranche_approval", "report_due"):
        assert asks_to_act(kind), kind
    for kind in ("report_accepted", "project_stopped", "handoff_rerouted"):
        assert not asks_to_act(kind), kind
    assert asks_to_act("a_kind_added_later")  # when in doubt, mail


def test_the_message_id_is_keyed_stable_and_valid() -> None:
    key = "project-KP-1-escalation-2027-04-01T00:00:00+00:00"
    mid = message_id(key, "trlgate.local")
    assert mid == message_id(key, "trlgate.local") != message_id(key + "x", "trlgate.local")
    assert re.fullmatch(r"<notification-[0-9a-f]{32}@trlgate\.local>", mid)
    assert "KP-1" not in mid  # a closed project's id stays out of the header


def test_retry_delays_double_up_to_the_cap() -> None:
    assert [retry_delay(n, 30, 3600) for n in (1, 2, 3, 4, 7, 8, 20)] == [30, 60, 120, 240, 1920, 3600, 3600]


def test_the_sink_refuses_addresses_that_cannot_be_delivered() -> None:
    assert deliverable("pm.sato@example.test")
    for bad in ("nobody@example.invalid", "x@INVALID", "x@host.invalid.", "no-at-sign", "@example.test", "x@"):
        assert not deliverable(bad), bad


def test_mails_render_in_japanese_and_english_as_text_and_html() -> None:
    ja = render_mail(
        "ja",
        kind="tranche_approval",
        full_name="鈴木",
        message="Tranche 1 <due>",
        project_id="KP-1",
        base_url="http://h",
    )
    assert ja.subject == "[trlgate] 支払いの承認をお願いします (KP-1)"
    assert "鈴木 様" in ja.text and "Tranche 1 <due>" in ja.text and "http://h/app/finance/approvals" in ja.text
    assert "Tranche 1 &lt;due&gt;" in ja.html and '<html lang="ja">' in ja.html  # HTML escapes the message
    en = render_mail(
        "en", kind="project_stopped", full_name="Aoki", message="m", project_id="KP-1", base_url="http://h"
    )
    assert en.subject == "[trlgate] A project has stopped (KP-1)"
    assert "turn off" in en.text and 'href="http://h/app/preferences"' in en.html
    unknown = render_mail("fr", kind="new_kind", full_name="X", message=None, project_id=None, base_url="http://h")
    assert unknown.subject == "[trlgate] お知らせ"  # an unknown language falls back to Japanese
    assert "保全措置" in unknown.text  # no message: withheld (closed work)


def test_compose_runs_mailpit_and_points_the_workers_at_it() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    mailpit = services["mailpit"]
    assert re.fullmatch(r"axllent/mailpit:v\d+\.\d+\.\d+", mailpit["image"])  # an exact version
    assert mailpit["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]
    assert services["worker"]["depends_on"]["mailpit"] == {"condition": "service_healthy"}
    env = services["worker"]["environment"]
    assert env["TRLGATE_SMTP_HOST"].endswith(":-mailpit}") and env["TRLGATE_SMTP_PORT"].endswith(":-1025}")


def test_an_address_is_one_plain_address() -> None:
    assert valid_address("pm.sato@example.test") and valid_address("a+b@mail.ministry.go.jp")
    for bad in (
        "",
        "pm.sato",
        "a@b",
        "a b@example.test",
        "A <a@example.test>",
        "a@example.test, b@example.test",
        "a@example.test\r\nBcc: x@y.z",
        "a@@example.test",
        "a@example.",
    ):
        assert not valid_address(bad), bad


def test_a_mail_links_to_the_page_where_its_work_is_done() -> None:
    from storage.mail_outbox import render_mail

    def link(kind: str, project_id: str | None, key: str = "") -> str:
        mail = render_mail(
            "en", kind=kind, full_name="X", message="m", project_id=project_id, base_url="http://h", key=key
        )
        return next(word for word in mail.text.split() if word.startswith("http://h/") and "preferences" not in word)

    assert link("decision_needed", "KP-1") == "http://h/app/projects/KP-1/gates"
    assert link("report_due", "KP-1", "project-KP-1-report-FY2027-due") == "http://h/app/projects/KP-1/reports/2027"
    assert link("tranche_approval", "KP-1") == "http://h/app/finance/approvals"
    assert link("project_stopped", "KP-1") == "http://h/app/notifications"  # no page of its own
    assert link("decision_needed", None) == "http://h/app/notifications"  # withheld: names no project
