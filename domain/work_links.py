"""Where a notice's work is done: the page a notification links to, in the notification centre
and in its e-mail alike."""

from __future__ import annotations

import re

_REPORT = "/app/projects/{project_id}/reports/{fiscal_year}"
_FISCAL_YEAR_IN_KEY = re.compile(r"-report-FY(\d{4})-")

# Where a notice's work is done, by its kind (kinds with no page of their own have no link);
# "{project_id}" in a link is the notice's project, "{fiscal_year}" the year its key names (a
# report's notices are keyed "<workflow>-report-FY<year>-..."); without one, the reports list.
WORK_LINKS: dict[str, str] = {
    "reminder": "/app/inbox",
    "invitation": "/app/inbox",
    # The programme manager's gate kinds: the project's gate under review (a redirect to it).
    "panel_complete": "/app/projects/{project_id}/gates",
    "escalation": "/app/projects/{project_id}/gates",
    "decision_needed": "/app/projects/{project_id}/gates",
    "handoff_offered": "/app/handoffs",
    "handoff_reminder": "/app/handoffs",
    "handoff_rerouted": "/app/handoffs",
    # A hand-off overdue (escalated to the PM): the project's hand-offs, where it is re-routed.
    "handoff_escalated": "/app/projects/{project_id}/handoffs",
    "tranche_approval": "/app/finance/approvals",
    "report_due": _REPORT,
    "report_overdue": _REPORT,
    "report_submitted": _REPORT,  # the PM's review is on the year's page
    "report_returned": _REPORT,
    "report_accepted": _REPORT,
}


def work_link(kind: str, project_id: str, key: str = "") -> str | None:
    link = WORK_LINKS.get(kind)
    if link is None:
        return None
    year = _FISCAL_YEAR_IN_KEY.search(key)
    if "{fiscal_year}" in link and year is None:
        return "/app/reports"
    return link.format(project_id=project_id, fiscal_year=year.group(1) if year else "")
