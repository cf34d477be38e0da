"""Every notification that is e-mailed gets its mail outbox row in the notification's own
transaction: a mapper event on Notification inserts it on the same connection, so whichever code
stores a notice (the activities, the services, a test) mails it, and a rollback takes both away.

The mail is rendered now, in the recipient's language (templates/mail/<lang>/), plain text and
HTML; the sender only sends. No row for a user without an address, an inactive one, or an
informational notice the user opted out of (domain/mail.py). A closed project's mail carries
neither its message nor its id: mail leaves the programme's systems, so it only says there is a
notice and links to the notification centre."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import event, insert, select
from sqlalchemy.engine import Connection

from config import REPO_ROOT, get_settings
from domain.mail import MailStatus, asks_to_act, message_id
from domain.proposal import Classification
from domain.work_links import work_link
from storage.models.base import utcnow
from storage.models.mail import MailOutbox
from storage.models.people import User
from storage.models.projects import Notification, Project

TEMPLATES = REPO_ROOT / "templates" / "mail"
LANGUAGES = ("ja", "en")

_env = Environment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(["html.j2"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


@dataclass(frozen=True)
class RenderedMail:
    subject: str
    text: str
    html: str


def render_mail(
    language: str,
    *,
    kind: str,
    full_name: str,
    message: str | None,
    project_id: str | None,
    base_url: str,
    key: str = "",
) -> RenderedMail:
    """The mail of one notice in `language` (ja|en). `message` and `project_id` None: withheld
    (closed work)."""
    lang = language if language in LANGUAGES else LANGUAGES[0]
    context: dict[str, Any] = {
        "kind": kind,
        "full_name": full_name,
        "message": message,
        "project_id": project_id,
        "asks_to_act": asks_to_act(kind),
        # The page where the work is done; a withheld notice (closed work) names no project, so
        # its link is the notification centre, where a cleared reader sees it.
        "link": base_url + ((project_id is not None and work_link(kind, project_id, key)) or "/app/notifications"),
        "prefs_link": f"{base_url}/app/preferences",
    }
    subject = _env.get_template(f"{lang}/subject.txt.j2").render(context)
    return RenderedMail(
        subject=" ".join(subject.split()),  # one line, whatever the template's whitespace
        text=_env.get_template(f"{lang}/body.txt.j2").render(context),
        html=_env.get_template(f"{lang}/body.html.j2").render(context),
    )


@dataclass(frozen=True)
class Recipient:
    username: str
    full_name: str
    email: str | None
    language: str | None
    active: bool
    mail_opt_out: bool


def outbox_row(notification: Notification, user: Recipient | None, closed: bool) -> dict[str, Any] | None:
    """The outbox row for a notice, or None when it is not mailed."""
    if user is None or not user.active or not user.email:
        return None
    if user.mail_opt_out and not asks_to_act(notification.kind):
        return None
    settings = get_settings()
    language = user.language or settings.mail_default_language
    mail = render_mail(
        language,
        kind=notification.kind,
        full_name=user.full_name,
        message=None if closed else notification.message,
        project_id=None if closed else notification.project_id,
        base_url=settings.resolved_public_url(),
        key=notification.key,
    )
    now = utcnow()
    return {
        "notification_key": notification.key,
        "message_id": message_id(notification.key, settings.mail_message_id_domain),
        "recipient": user.username,
        "to_address": user.email,
        "language": language if language in LANGUAGES else LANGUAGES[0],
        "kind": notification.kind,
        "subject": mail.subject,
        "body_text": mail.text,
        "body_html": mail.html,
        "status": MailStatus.PENDING.value,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": "",
        "created_at": now,
    }


@event.listens_for(Notification, "after_insert")
def _mail_notification(_mapper: Any, connection: Connection, target: Notification) -> None:
    # Core statements on the flush's own connection: the session may not be used mid-flush.
    found = connection.execute(
        select(User.username, User.full_name, User.email, User.language, User.active, User.mail_opt_out).where(
            User.username == target.recipient
        )
    ).first()
    user = Recipient(*found) if found is not None else None
    classification = connection.execute(
        select(Project.classification).where(Project.id == target.project_id)
    ).scalar_one_or_none()
    row = outbox_row(target, user, classification == Classification.CLOSED.value)
    if row is not None:
        connection.execute(insert(MailOutbox).values(**row))
