"""The progress-report pages over HTTP in this process: the list of a user's projects with each
fiscal year's report (due and overdue as the workflow's calendar has them), one year's report
page (file, resubmit after a return, review), refusals re-rendered with the typed text kept.
Temporal is a stand-in here: it answers the status query with a calendar and records (or
refuses) the Updates the pages send through the API's route functions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain.programme import PROGRAMME_CODE
from domain.project import MoneySnapshot, Phase, ProgressReportInput, ProjectSnapshot, ReportReviewInput
from domain.statuses import ReportStatus
from domain.work_links import work_link
from storage.models import Notification, ProgressReport, Project
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import EN, JA, sign_in, token_of

PERFORMER, PM, OTHER_PM = "perf.aoki", "pm.sato", "pm.tanaka"
PID = "KP-REPORTS-1"
JA_TEXT = "量子センサーの試作機を完成し、感度を三倍に改善した。"


@dataclass
class FakeHandle:
    temporal: FakeTemporal

    async def query(self, *_: Any, **__: Any) -> ProjectSnapshot:
        return self.temporal.snapshot

    async def execute_update(self, _update: Any, arg: Any, **_: Any) -> MoneySnapshot:
        if self.temporal.refuse:
            raise WorkflowUpdateFailedError(ApplicationError(self.temporal.refuse))
        self.temporal.updates.append(arg)
        assert self.temporal.snapshot.money is not None
        return self.temporal.snapshot.money


@dataclass
class FakeTemporal:
    """A project workflow whose programme calendar began 2026-04-10 and reads 2027-05-01 now:
    FY2026 has ended (its report overdue unless accepted), FY2027 is under way (due at its end)."""

    refuse: str = ""
    updates: list[Any] = field(default_factory=list)
    snapshot: ProjectSnapshot = field(
        default_factory=lambda: ProjectSnapshot(
            project_id=PID,
            status="active",
            phase=Phase.STAGE,
            stage_index=0,
            stage_name="Concept",
            trl=2,
            waiting_for="",
            open_gate=None,
            reviews_pending=[],
            handoffs_pending=[],
            history_length=10,
            money=MoneySnapshot(
                stage_no=1,
                tranches_paid=[],
                reports={},
                approvals={},
                waiting_for_funds=False,
                programme_date=date(2027, 5, 1),
                calendar_start=date(2026, 4, 10),
            ),
        )
    )

    def get_workflow_handle(self, _workflow_id: str) -> FakeHandle:
        return FakeHandle(self)


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
async def api(sqlite_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=temporal) as api:
        async with api.sessionmaker.begin() as s:
            s.add(_project(PID, PM, "量子センサー計画"))
            s.add(_project("KP-REPORTS-2", OTHER_PM, "Someone else's work", performer="perf.other"))
        yield api


def _project(pid: str, pm: str, title: str, performer: str = PERFORMER) -> Project:
    return Project(
        id=pid,
        programme_code=PROGRAMME_CODE,
        workflow_id=f"project-{pid}",
        title=title,
        organisation="Tokai Quantum Consortium",
        performer=performer,
        programme_manager=pm,
        funding_ministry="METI",
        research_vision="sensing",
        classification="open",
        start_trl=1,
        target_trl=6,
        current_trl=2,
        status="active",
        total_budget=300_000_000,
        reviewers=["rev.ito"],
        public_use_ministries=["METI"],
    )


async def _file(api: InProcessApi, fy: int, status: ReportStatus, summary: str, note: str = "") -> None:
    reviewed = status != ReportStatus.SUBMITTED
    async with api.sessionmaker.begin() as s:
        s.add(
            ProgressReport(
                project_id=PID,
                fiscal_year=fy,
                status=status,
                summary=summary,
                submitted_by=PERFORMER,
                submitted_at=datetime(2027, 4, 20, tzinfo=UTC),
                reviewed_by=PM if reviewed else None,
                reviewed_at=datetime(2027, 4, 25, tzinfo=UTC) if reviewed else None,
                note=note,
            )
        )


async def test_the_performer_lists_their_projects_with_each_years_report_due_or_overdue(api: InProcessApi) -> None:
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD, EN)
    page = await api.http.get("/app/reports", headers=EN)
    assert page.status_code == 200
    assert 'href="/app/reports"' in page.text  # the navigation names the page
    assert "量子センサー計画" in page.text and "Someone else" not in page.text
    # FY2026 ended on 2027-03-31 with no report: overdue, marked; FY2027 is due at its end.
    assert f'/app/projects/{PID}/reports/2026">FY2026' in page.text and '/reports/2027">FY2027' in page.text
    row_2026 = page.text.split('/reports/2026"')[1].split("</tr>")[0]
    assert 'class="overdue"' in row_2026 and "31 Mar 2027" in row_2026
    row_2027 = page.text.split('/reports/2027"')[1].split("</tr>")[0]
    assert 'class="overdue"' not in row_2027 and "Due at the year" in row_2027 and "31 Mar 2028" in row_2027
    assert "1 project reports to you or through you." in page.text


async def test_a_returned_report_shows_its_note_in_the_list_and_stays_overdue(api: InProcessApi) -> None:
    await _file(api, 2026, ReportStatus.RETURNED, JA_TEXT, note="予算の内訳を追記してください")
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get("/app/reports", headers=JA)
    row = page.text.split('/reports/2026"')[1].split("</tr>")[0]
    assert "差し戻し" in row and "予算の内訳を追記してください" in row and 'class="overdue"' in row


async def test_without_temporal_the_list_shows_the_filed_reports_only(sqlite_url: str) -> None:
    async with inprocess_api(sqlite_url) as api:
        async with api.sessionmaker.begin() as s:
            s.add(_project(PID, PM, "量子センサー計画"))
        await _file(api, 2026, ReportStatus.ACCEPTED, JA_TEXT)
        await sign_in(api.http, PM, DEMO_PASSWORD, EN)
        page = await api.http.get("/app/reports", headers=EN)
        assert page.status_code == 200 and "/reports/2026" in page.text and "/reports/2027" not in page.text
        assert "Accepted" in page.text


async def test_the_list_is_for_performers_and_programme_managers(api: InProcessApi) -> None:
    await sign_in(api.http, "rev.ito", DEMO_PASSWORD, EN)
    page = await api.http.get("/app/reports", headers=EN)
    assert page.status_code == 403 and "performer" in page.text
    assert 'href="/app/reports"' not in page.text


async def test_the_performer_files_a_report_in_japanese(api: InProcessApi, temporal: FakeTemporal) -> None:
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=JA)
    assert page.status_code == 200 and 'name="summary"' in page.text and "提出" in page.text
    assert 'name="outcome"' not in page.text  # no review form for a performer
    done = await api.http.post(
        f"/app/projects/{PID}/reports/2026", data={"summary": JA_TEXT, "csrftoken": token_of(page)}, headers=JA
    )
    assert done.status_code == 303 and done.headers["location"] == f"/app/projects/{PID}/reports/2026?done=submitted"
    [sent] = temporal.updates
    assert isinstance(sent, ProgressReportInput)
    assert (sent.fiscal_year, sent.summary, sent.submitted_by) == (2026, JA_TEXT, PERFORMER)


async def test_a_browsers_crlf_line_breaks_are_filed_as_newlines(api: InProcessApi, temporal: FakeTemporal) -> None:
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=JA)
    done = await api.http.post(
        f"/app/projects/{PID}/reports/2026",
        data={"summary": f"{JA_TEXT}\r\n第二段落。", "csrftoken": token_of(page)},
        headers=JA,
    )
    assert done.status_code == 303
    [sent] = temporal.updates
    assert sent.summary == f"{JA_TEXT}\n第二段落。"


async def test_a_short_report_is_refused_with_the_text_kept(api: InProcessApi, temporal: FakeTemporal) -> None:
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=JA)
    short = await api.http.post(
        f"/app/projects/{PID}/reports/2026", data={"summary": "短い", "csrftoken": token_of(page)}, headers=JA
    )
    assert short.status_code == 422 and 'role="alert"' in short.text and ">短い</textarea>" in short.text
    assert temporal.updates == []


async def test_the_workflows_refusal_is_shown_with_the_text_kept(api: InProcessApi, temporal: FakeTemporal) -> None:
    temporal.refuse = "FY2029 is outside the project's reporting years so far (FY2026 to FY2027)"
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2029", headers=JA)
    refused = await api.http.post(
        f"/app/projects/{PID}/reports/2029", data={"summary": JA_TEXT, "csrftoken": token_of(page)}, headers=JA
    )
    assert refused.status_code == 409
    assert "outside the project&#39;s reporting years" in refused.text and f">{JA_TEXT}</textarea>" in refused.text


async def test_a_returned_report_shows_the_note_above_the_form_with_the_text_prefilled(api: InProcessApi) -> None:
    await _file(api, 2026, ReportStatus.RETURNED, JA_TEXT, note="予算の内訳を追記してください")
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=JA)
    assert page.status_code == 200
    note_at, form_at = page.text.index("予算の内訳を追記してください"), page.text.index('name="summary"')
    assert note_at < form_at and f">{JA_TEXT}</textarea>" in page.text and "再提出" in page.text


async def test_the_pm_reviews_a_submitted_report(api: InProcessApi, temporal: FakeTemporal) -> None:
    await _file(api, 2026, ReportStatus.SUBMITTED, JA_TEXT)
    await sign_in(api.http, PM, DEMO_PASSWORD)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=JA)
    assert page.status_code == 200 and JA_TEXT in page.text and 'name="outcome"' in page.text
    assert 'name="summary"' not in page.text  # submitted: nothing to file until it is returned
    url = f"/app/projects/{PID}/reports/2026/review"
    token = token_of(page)
    undecided = await api.http.post(url, data={"note": "メモ", "csrftoken": token}, headers=JA)
    assert undecided.status_code == 422 and ">メモ</textarea>" in undecided.text and 'role="alert"' in undecided.text
    temporal.refuse = "returning a report needs a note saying what is missing"
    no_note = await api.http.post(url, data={"outcome": "return", "note": "", "csrftoken": token}, headers=JA)
    assert no_note.status_code == 409 and "needs a note" in no_note.text
    assert 'value="return" checked' in no_note.text
    temporal.refuse = ""
    returned = await api.http.post(
        url, data={"outcome": "return", "note": "予算の内訳を追記してください", "csrftoken": token}, headers=JA
    )
    assert returned.status_code == 303 and returned.headers["location"].endswith("?done=returned")
    [sent] = temporal.updates
    assert isinstance(sent, ReportReviewInput)
    assert (sent.accept, sent.note, sent.reviewed_by) == (False, "予算の内訳を追記してください", PM)


async def test_only_the_projects_pm_reviews(api: InProcessApi, temporal: FakeTemporal) -> None:
    await _file(api, 2026, ReportStatus.SUBMITTED, JA_TEXT)
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD, EN)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=EN)
    assert 'name="outcome"' not in page.text and JA_TEXT in page.text
    refused = await api.http.post(
        f"/app/projects/{PID}/reports/2026/review", data={"outcome": "accept", "csrftoken": token_of(page)}
    )
    assert refused.status_code == 403 and temporal.updates == []


async def test_another_pm_cannot_open_the_report(api: InProcessApi) -> None:
    await sign_in(api.http, OTHER_PM, DEMO_PASSWORD, EN)
    page = await api.http.get(f"/app/projects/{PID}/reports/2026", headers=EN)
    assert page.status_code in (403, 404) and "量子センサー計画" not in page.text


def test_report_notices_link_to_their_years_report() -> None:
    keyed = {
        "report_overdue": f"project-{PID}-report-FY2026-reminder-2",
        "report_submitted": f"project-{PID}-report-FY2026-submitted-0f1e",
        "report_returned": f"project-{PID}-report-FY2026-returned-0f1e",
        "report_accepted": f"project-{PID}-report-FY2026-accepted-0f1e",
        "report_due": f"project-{PID}-report-FY2026-due",
    }
    for kind, key in keyed.items():
        assert work_link(kind, PID, key) == f"/app/projects/{PID}/reports/2026"
        assert work_link(kind, PID, "a-key-naming-no-year") == "/app/reports"
    assert work_link("invitation", PID, keyed["report_overdue"]) == "/app/inbox"


async def test_the_pms_submitted_notice_opens_the_review(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        s.add(
            Notification(
                key=f"project-{PID}-report-FY2026-submitted-0f1e",
                project_id=PID,
                recipient=PM,
                kind="report_submitted",
                message=f"The FY2026 progress report of {PID} was submitted by {PERFORMER}.",
                at=datetime(2027, 4, 20, tzinfo=UTC),
            )
        )
    await sign_in(api.http, PM, DEMO_PASSWORD, EN)
    centre = await api.http.get("/app/notifications", headers=EN)
    assert f'href="/app/projects/{PID}/reports/2026"' in centre.text


async def test_the_list_is_paged_and_counted(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        for n in range(21):
            s.add(_project(f"KP-PAGED-{n:02d}", PM, f"Paged project {n:02d}"))
    await sign_in(api.http, PM, DEMO_PASSWORD, EN)
    first = await api.http.get("/app/reports", headers=EN)
    assert "22 projects report to you or through you." in first.text and "Page 1 of 2" in first.text
    second = await api.http.get("/app/reports?page=2", headers=EN)
    assert "Page 2 of 2" in second.text and second.text.count('scope="row"') == 2


async def test_closed_work_stays_out_for_a_user_without_a_grant(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        closed = _project("KP-CLOSED-R", PM, "秘匿の報告")
        closed.classification = "closed"
        s.add(closed)
    await sign_in(api.http, PERFORMER, DEMO_PASSWORD, EN)
    listed = await api.http.get("/app/reports", headers=EN)
    assert "KP-CLOSED-R" not in listed.text and PID in listed.text
    page = await api.http.get("/app/projects/KP-CLOSED-R/reports/2026", headers=EN)
    assert page.status_code in (403, 404) and "秘匿の報告" not in page.text
