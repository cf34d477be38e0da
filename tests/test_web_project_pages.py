"""The programme manager's project pages over HTTP in this process: the start-project form and its
stage-plan editor, the project page, hold/resume and stop. Temporal is a recording stand-in: the
form's refusals happen before anything starts, and the start, the status query and the commands
are what the API's own functions send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from markupsafe import escape
from sqlalchemy import update

from domain.project import Phase, ProjectSnapshot, ProjectStatus, ProjectWorkflowInput
from domain.proposal import Proposal
from storage.models import Project
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_web_pages import EN, JA, _closed_project_under_review, sign_in, token_of

REVIEWERS = "rev.ito, rev.kato rev.mori"


@dataclass
class FakeHandle:
    client: FakeTemporal
    workflow_id: str

    async def query(self, _query: Any, *args: Any, **_: Any) -> ProjectSnapshot:
        return ProjectSnapshot(
            project_id=self.workflow_id.removeprefix("project-"),
            status=ProjectStatus.ACTIVE,
            phase=Phase.STAGE,
            stage_index=0,
            stage_name="Basic research",
            trl=1,
            waiting_for="the stage 1 timer (test stand-in)",
            open_gate=None,
            reviews_pending=[],
            handoffs_pending=[],
            history_length=1,
        )

    async def execute_update(self, update: Any, arg: Any, **_: Any) -> Any:
        self.client.updates.append((self.workflow_id, update.__name__, arg))
        return await self.query(None)


@dataclass
class FakeTemporal:
    """Records what the pages start and send; answers the status query."""

    started: list[ProjectWorkflowInput] = field(default_factory=list)
    updates: list[tuple[str, str, Any]] = field(default_factory=list)

    async def start_workflow(self, _run: Any, arg: ProjectWorkflowInput, **_: Any) -> None:
        self.started.append(arg)

    def get_workflow_handle(self, workflow_id: str) -> FakeHandle:
        return FakeHandle(self, workflow_id)


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
async def api(sqlite_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=temporal) as api:
        yield api


def proposal_form(token: str, **overrides: str) -> dict[str, str]:
    form = {
        "csrftoken": token,
        "title": "自律型水中点検ドローン",
        "organisation": "Kobe Maritime Robotics",
        "research_vision": "Protection of undersea infrastructure",
        "programme_manager": "pm.sato",
        "funding_ministry": "MEXT",
        "reviewers": REVIEWERS,
        "public_use_ministries": "MOD, MLIT",
        "classification": "open",
        "start_trl": "1",
        "target_trl": "9",
        "total_budget": "1,000,000,000",
        "plan": "default",
        "rows": "0",
        "action": "start",
    }
    form.update(overrides)
    return form


async def signed_in(api: InProcessApi, user: str = "pm.sato") -> httpx.Response:
    assert (await sign_in(api.http, user, DEMO_PASSWORD)).status_code == 303
    page = await api.http.get("/app/projects/new", headers=EN)
    return page


async def test_the_form_opens_with_the_programmes_default_plan(api: InProcessApi) -> None:
    page = await signed_in(api)
    assert page.status_code == 200
    for name in ("Basic research", "Applied research", "Demonstration", "Social implementation"):
        assert f'value="{name}"' in page.text
    assert 'id="stage-0-trl_in" name="stage-0-trl_in" value="1"' in page.text
    assert 'id="stage-3-trl_out" name="stage-3-trl_out" value="9"' in page.text
    assert 'name="programme_manager" maxlength="64" value="pm.sato"' in page.text
    portfolio = await api.http.get("/app/projects", headers=EN)
    assert 'href="/app/projects/new"' in portfolio.text


async def test_a_later_entry_trl_chooses_the_later_stages(api: InProcessApi) -> None:
    page = await signed_in(api)
    form = proposal_form(token_of(page), start_trl="5", action="default")
    shown = await api.http.post("/app/projects/new", data=form, headers=EN)
    assert shown.status_code == 200
    assert 'value="Basic research"' not in shown.text and 'value="Applied research"' not in shown.text
    assert 'id="stage-0-name" name="stage-0-name" value="Demonstration"' in shown.text
    assert 'id="stage-0-trl_in" name="stage-0-trl_in" value="5"' in shown.text
    # The budget split by the default shares, its yearly tranches ready to edit.
    assert 'id="stage-0-budget" name="stage-0-budget" value="428571428"' in shown.text
    assert 'value="自律型水中点検ドローン"' in shown.text  # everything typed kept


async def test_starting_with_the_default_plan_redirects_to_the_new_project(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    page = await signed_in(api)
    started = await api.http.post("/app/projects/new", data=proposal_form(token_of(page), start_trl="3"))
    assert started.status_code == 303, started.text
    location = started.headers["location"]
    [sent] = temporal.started
    project_id = sent.proposal.project_id
    assert location == f"/app/projects/{project_id}"
    assert sent.proposal.title == "自律型水中点検ドローン"  # the Japanese title round-trips
    assert [s.name for s in sent.proposal.stage_plan] == ["Applied research", "Demonstration", "Social implementation"]
    assert sent.proposal.reviewers == ["rev.ito", "rev.kato", "rev.mori"]
    project = await api.http.get(location, headers=JA)
    assert project.status_code == 200
    assert "自律型水中点検ドローン" in project.text and "Kobe Maritime Robotics" in project.text
    assert "the stage 1 timer (test stand-in)" in project.text  # the workflow's "waiting for"
    assert f'href="http://127.0.0.1:8233/namespaces/default/workflows/project-{project_id}"' in project.text
    assert "Applied research" in project.text  # the timeline's stages (written with the row)
    portfolio = await api.http.get("/app/projects", headers=JA)
    assert f'<a href="/app/projects/{project_id}">自律型水中点検ドローン</a>' in portfolio.text


async def test_a_custom_plan_with_an_added_stage(api: InProcessApi, temporal: FakeTemporal) -> None:
    page = await signed_in(api)
    token = token_of(page)
    rows = {
        "stage-0-name": "基礎研究",
        "stage-0-trl_in": "2",
        "stage-0-trl_out": "6",
        "stage-0-duration_days": "700",
        "stage-0-budget": "400000000",
        "stage-0-tranches": "0=200000000; 365=200000000",
    }
    added = await api.http.post(
        "/app/projects/new", data={**proposal_form(token, action="add", rows="1", start_trl="2"), **rows}, headers=EN
    )
    assert added.status_code == 200 and 'name="stage-1-name"' in added.text and 'name="stage-2-name"' not in added.text
    assert 'name="plan" value="custom" checked' in added.text and 'value="基礎研究"' in added.text
    second = {
        "stage-1-name": "Pilot plant",
        "stage-1-trl_in": "6",
        "stage-1-trl_out": "9",
        "stage-1-duration_days": "400",
        "stage-1-budget": "600000000",
        "stage-1-tranches": "0=600000000",
    }
    form = {**proposal_form(token, plan="custom", rows="3", start_trl="2"), **rows, **second}
    form["stage-2-name"] = "to be removed"
    form["stage-2-remove"] = "1"
    started = await api.http.post("/app/projects/new", data=form)
    assert started.status_code == 303, started.text
    plan = temporal.started[0].proposal.stage_plan
    assert [(s.name, s.trl_in, s.trl_out, s.budget) for s in plan] == [
        ("基礎研究", 2, 6, 400_000_000),
        ("Pilot plant", 6, 9, 600_000_000),
    ]
    assert [t.offset_days for t in plan[0].tranches] == [0, 365]


async def _api_422(api: InProcessApi, body: dict[str, Any]) -> str:
    response = await api.call("POST", "/projects", "pm.sato", json=body)
    assert response.status_code == 422
    detail = response.json()["detail"]
    return detail if isinstance(detail, str) else "; ".join(e["msg"] for e in detail)


API_BODY = {
    "title": "Autonomous inspection",
    "organisation": "Kobe Maritime Robotics",
    "research_vision": "Protection of undersea infrastructure",
    "programme_manager": "pm.sato",
    "funding_ministry": "MEXT",
    "reviewers": ["rev.ito", "rev.kato", "rev.mori"],
    "public_use_ministries": ["MOD", "MLIT"],
    "start_trl": 1,
    "target_trl": 9,
    "total_budget": 1_000_000_000,
}


@pytest.mark.parametrize(
    ("overrides", "api_body", "field_id"),
    [
        ({"title": "x"}, {"title": "x"}, "title"),
        ({"total_budget": "lots"}, {"total_budget": "lots"}, "total_budget"),
        ({"start_trl": "9", "target_trl": "3"}, {"start_trl": 9, "target_trl": 3}, None),
        ({"reviewers": "rev.ito pm.sato"}, {"reviewers": ["rev.ito", "pm.sato"]}, None),
        ({"reviewers": "rev.ito rev.nobody"}, {"reviewers": ["rev.ito", "rev.nobody"]}, "reviewers"),
        ({"total_budget": "900000000000000"}, {"total_budget": 900_000_000_000_000}, "total_budget"),
    ],
)
async def test_bad_input_is_refused_with_the_apis_reason_and_everything_kept(
    api: InProcessApi, temporal: FakeTemporal, overrides: dict[str, str], api_body: dict[str, Any], field_id: str | None
) -> None:
    page = await signed_in(api)
    refused = await api.http.post("/app/projects/new", data=proposal_form(token_of(page), **overrides), headers=EN)
    assert refused.status_code == 422
    reason = await _api_422(api, {**API_BODY, **api_body})
    for part in reason.split("; "):
        assert str(escape(part)) in refused.text, part
    if field_id:
        assert f'aria-describedby="{field_id}-error"' in refused.text
    for typed in overrides.values():
        assert f'value="{typed}"' in refused.text or f">{typed}<" in refused.text or typed.isdigit()
    assert 'value="Kobe Maritime Robotics"' in refused.text and "Protection of undersea infrastructure" in refused.text
    assert temporal.started == []


async def test_a_stage_whose_tranches_miss_its_budget_is_refused_beside_its_row(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    page = await signed_in(api)
    form = proposal_form(token_of(page), plan="custom", rows="1", total_budget="1000000000")
    form |= {
        "stage-0-name": "All in one",
        "stage-0-trl_in": "1",
        "stage-0-trl_out": "9",
        "stage-0-duration_days": "1000",
        "stage-0-budget": "1000000000",
        "stage-0-tranches": "0=1; 500=2",
    }
    refused = await api.http.post("/app/projects/new", data=form, headers=EN)
    assert refused.status_code == 422
    assert "tranches sum to 3 yen but the stage budget is 1000000000 yen" in refused.text
    assert 'id="stages-0-error"' in refused.text and 'value="0=1; 500=2"' in refused.text
    assert temporal.started == []


async def test_a_post_without_the_csrf_token_is_refused(api: InProcessApi, temporal: FakeTemporal) -> None:
    page = await signed_in(api)
    form = proposal_form(token_of(page))
    del form["csrftoken"]
    assert (await api.http.post("/app/projects/new", data=form)).status_code == 403
    assert temporal.started == []


async def test_only_programme_managers_and_admins_start_projects(api: InProcessApi, temporal: FakeTemporal) -> None:
    assert (await sign_in(api.http, "rev.ito", DEMO_PASSWORD)).status_code == 303
    page = await api.http.get("/app/projects/new", headers=EN)
    assert page.status_code == 403 and "this needs one of the roles: pm, admin" in page.text
    portfolio = await api.http.get("/app/projects", headers=EN)
    assert 'href="/app/projects/new"' not in portfolio.text
    posted = await api.http.post("/app/projects/new", data=proposal_form(token_of(portfolio)))
    assert posted.status_code == 403 and temporal.started == []


async def test_a_pm_starts_only_their_own_projects(api: InProcessApi, temporal: FakeTemporal) -> None:
    page = await signed_in(api, "pm.tanaka")
    refused = await api.http.post("/app/projects/new", data=proposal_form(token_of(page)), headers=EN)
    assert refused.status_code == 403 and "a programme manager starts only their own projects" in refused.text
    assert 'value="自律型水中点検ドローン"' in refused.text and temporal.started == []


async def _started(api: InProcessApi) -> str:
    page = await signed_in(api)
    started = await api.http.post("/app/projects/new", data=proposal_form(token_of(page)))
    assert started.status_code == 303
    return started.headers["location"].rsplit("/", 1)[1]


async def test_the_project_page_is_refused_as_the_api_refuses_it(api: InProcessApi) -> None:
    closed = await _closed_project_under_review(api, pm="pm.tanaka")  # SECRET/QS: pm.tanaka is not cleared
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, "pm.tanaka", DEMO_PASSWORD)).status_code == 303
        page = await http.get(f"/app/projects/{closed}", headers=EN)
        missing = await http.get("/app/projects/KP-NOWHERE")
    by_api = await api.call("GET", f"/projects/{closed}", "pm.tanaka")
    assert page.status_code == by_api.status_code == 403
    assert str(escape(by_api.json()["detail"])) in page.text and "秘匿プロジェクト" not in page.text
    assert missing.status_code == 404


async def test_another_pms_project_is_refused_as_the_api_refuses_it(api: InProcessApi, temporal: FakeTemporal) -> None:
    project_id = await _started(api)
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, "pm.tanaka", DEMO_PASSWORD)).status_code == 303
        page = await http.get(f"/app/projects/{project_id}", headers=EN)
        by_api = await api.call("GET", f"/projects/{project_id}", "pm.tanaka")
        assert page.status_code == by_api.status_code == 404  # another PM's project stays hidden
        assert "自律型水中点検ドローン" not in page.text
        portfolio = await http.get("/app/projects", headers=EN)
        form = {"csrftoken": token_of(portfolio), "reason": "not mine to stop", "lessons": "", "confirm": "yes"}
        refused = await http.post(f"/app/projects/{project_id}/stop", data=form, headers=EN)
        resumed = await http.post(f"/app/projects/{project_id}/resume", data=form, headers=EN)
    assert refused.status_code == resumed.status_code == 404
    assert temporal.updates == []


async def test_stopping_needs_the_confirmation_and_keeps_the_typed_text(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    project_id = await _started(api)
    page = await api.http.get(f"/app/projects/{project_id}", headers=EN)
    assert "Stop this project?" in page.text
    form = {"csrftoken": token_of(page), "reason": "研究の方向転換", "lessons": "早めに判断すべき"}
    unconfirmed = await api.http.post(f"/app/projects/{project_id}/stop", data=form, headers=EN)
    assert unconfirmed.status_code == 422 and "Tick the box to confirm" in unconfirmed.text
    assert "研究の方向転換" in unconfirmed.text and "早めに判断すべき" in unconfirmed.text
    assert f'name="next" value="/app/projects/{project_id}"' in unconfirmed.text  # not the post's address
    short = await api.http.post(f"/app/projects/{project_id}/stop", data={**form, "reason": "x", "confirm": "yes"})
    by_api = await api.call("POST", f"/projects/{project_id}/terminate", "pm.sato", json={"reason": "x"})
    assert short.status_code == by_api.status_code == 422
    assert by_api.json()["detail"][0]["msg"] in short.text and "早めに判断すべき" in short.text
    assert temporal.updates == []
    stopped = await api.http.post(f"/app/projects/{project_id}/stop", data={**form, "confirm": "yes"})
    assert stopped.status_code == 303 and stopped.headers["location"].endswith("?done=stopped")
    [(workflow_id, update_name, arg)] = temporal.updates
    assert workflow_id == f"project-{project_id}" and update_name == "terminate"
    assert arg.reason == "研究の方向転換" and arg.lessons == "早めに判断すべき" and arg.requested_by == "pm.sato"


async def test_a_project_on_hold_is_resumed_from_its_page(api: InProcessApi, temporal: FakeTemporal) -> None:
    project_id = await _started(api)
    page = await api.http.get(f"/app/projects/{project_id}", headers=EN)
    assert 'action="/app/projects/' + project_id + '/resume"' not in page.text  # not on hold
    async with api.sessionmaker.begin() as s:
        await s.execute(update(Project).where(Project.id == project_id).values(status=ProjectStatus.ON_HOLD))
    page = await api.http.get(f"/app/projects/{project_id}", headers=EN)
    assert f'action="/app/projects/{project_id}/resume"' in page.text
    resumed = await api.http.post(
        f"/app/projects/{project_id}/resume", data={"csrftoken": token_of(page), "note": "資金の目処が立った"}
    )
    assert resumed.status_code == 303
    [(_, update_name, arg)] = temporal.updates
    assert update_name == "resume" and arg.note == "資金の目処が立った"


async def test_without_temporal_the_page_says_so_and_shows_the_database_view(sqlite_url: str) -> None:
    temporal = FakeTemporal()
    async with inprocess_api(sqlite_url, temporal=temporal) as api:
        project_id = await _started(api)
    async with inprocess_api(sqlite_url, temporal_ui_url="https://temporal.example/") as api:
        assert (await sign_in(api.http, "pm.sato", DEMO_PASSWORD)).status_code == 303
        page = await api.http.get(f"/app/projects/{project_id}", headers=EN)
    assert page.status_code == 200
    assert "The workflow does not answer just now" in page.text and "自律型水中点検ドローン" in page.text
    assert f'href="https://temporal.example/namespaces/default/workflows/project-{project_id}"' in page.text


def test_the_proposal_model_is_the_apis() -> None:
    assert Proposal.model_fields["stages"].default is None  # plan "default" leaves the stages to the model


@pytest.mark.parametrize(
    "overrides",
    [
        {"label_level": "ULTRA", "classification": "closed"},
        {"classification": "secret-ish"},
        {"funding_ministry": "MOF"},
        {"title": "bad\x00title", "start_date": "2026-02-30"},
        {"rows": "99999999999", "plan": "custom", "stage-0-budget": "1e9", "stage-0-tranches": "x; 1=; =2"},
        {"total_budget": "٣٠٠٠٠٠٠", "start_trl": "²", "public_use_ministries": ",,,"},
    ],
)
async def test_odd_input_is_a_422_never_a_server_error(
    api: InProcessApi, temporal: FakeTemporal, overrides: dict[str, str]
) -> None:
    page = await signed_in(api)
    refused = await api.http.post("/app/projects/new", data=proposal_form(token_of(page), **overrides), headers=EN)
    assert refused.status_code == 422, refused.text[-2000:]
    assert 'role="alert"' in refused.text and temporal.started == []


async def test_closed_work_is_started_with_its_label(api: InProcessApi, temporal: FakeTemporal) -> None:
    page = await signed_in(api)
    form = proposal_form(token_of(page), classification="closed", label_level="SECRET", compartments="QS")
    uncleared = await api.http.post("/app/projects/new", data=form, headers=EN)  # rev.mori: CONFIDENTIAL
    assert uncleared.status_code == 422
    assert "reviewer &#39;rev.mori&#39; is not cleared for the label SECRET QS" in uncleared.text
    assert 'aria-describedby="reviewers-error"' in uncleared.text and temporal.started == []
    form["reviewers"] = "rev.ito rev.kato"
    assert (await api.http.post("/app/projects/new", data=form)).status_code == 303
    label = temporal.started[0].proposal.label
    assert label is not None and label.level.name == "SECRET" and label.compartments == ["QS"]
