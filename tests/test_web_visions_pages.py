"""The registries' pages and the portfolio dashboard over HTTP in this process: register, edit and
retire with the refusals beside the form (everything typed kept), the start form's vision select,
and the dashboard's figures, links, kept filters, charts and who may open it."""

from __future__ import annotations

import base64
import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from storage.models import AuditEntry, ResearchVision
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.test_visions import portfolio_rows  # noqa: F401 (a fixture)
from tests.test_web_pages import EN, JA, sign_in, token_of
from tests.test_web_project_pages import FakeTemporal, proposal_form


@pytest.fixture
def temporal() -> FakeTemporal:
    return FakeTemporal()


@pytest.fixture
async def api(sqlite_url: str, temporal: FakeTemporal) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=temporal) as api:
        yield api


async def _signed_in(api: InProcessApi, user: str, headers: dict[str, str] = EN) -> str:
    assert (await sign_in(api.http, user, DEMO_PASSWORD, headers)).status_code == 303
    return token_of(await api.http.get("/app/visions", headers=headers))


async def test_a_pm_registers_edits_and_retires_a_vision_on_the_pages(api: InProcessApi) -> None:
    token = await _signed_in(api, "pm.sato")
    form = await api.http.get("/app/visions/visions/new", headers=EN)
    assert form.status_code == 200 and "Register a research vision" in form.text
    made = await api.http.post(
        "/app/visions/visions/new",
        data={"csrftoken": token, "title": "量子センシング", "description": "航法", "ministry": "MEXT"},
    )
    assert made.status_code == 303 and made.headers["location"] == "/app/visions?done=created"
    async with api.sessionmaker() as s:
        vision = (await s.scalars(select(ResearchVision))).one()
    listed = await api.http.get("/app/visions?done=created", headers=JA)
    assert "登録しました。" in listed.text and "量子センシング" in listed.text and "有効" in listed.text
    edit = await api.http.get(f"/app/visions/visions/{vision.id}/edit", headers=EN)
    assert 'value="量子センシング"' in edit.text
    saved = await api.http.post(
        f"/app/visions/visions/{vision.id}/edit",
        data={"csrftoken": token, "title": "量子センシングと航法", "description": "", "ministry": "METI"},
    )
    assert saved.status_code == 303
    retired = await api.http.post(f"/app/visions/visions/{vision.id}/retire", data={"csrftoken": token})
    assert retired.status_code == 303 and retired.headers["location"] == "/app/visions?done=retired"
    after = await api.http.get("/app/visions", headers=EN)
    row = re.search(rf'<tr id="visions-{vision.id}">.*?</tr>', after.text, re.S)
    assert row and "量子センシングと航法" in row.group() and "METI" in row.group() and "Retired" in row.group()
    assert "/retire" not in row.group()  # a retired entry has no edit or retire any more
    again = await api.http.post(f"/app/visions/visions/{vision.id}/retire", data={"csrftoken": token}, headers=EN)
    assert again.status_code == 409 and "is retired already" in again.text
    # Retired: no longer offered on the start form.
    start = await api.http.get("/app/projects/new", headers=EN)
    assert "量子センシングと航法" not in start.text


async def test_a_refused_entry_shows_the_reasons_and_keeps_what_was_typed(api: InProcessApi) -> None:
    token = await _signed_in(api, "admin")
    typed = {"csrftoken": token, "title": "x", "description": "何かの説明", "ministry": ""}
    short = await api.http.post("/app/visions/areas/new", data=typed, headers=EN)
    assert short.status_code == 422 and "Nothing was saved" in short.text
    assert "何かの説明" in short.text and 'value="x"' in short.text
    unknown = await api.http.post(
        "/app/visions/areas/new", data={**typed, "title": "Biotech", "ministry": "ZZZ"}, headers=EN
    )
    assert unknown.status_code == 422 and "ministry &#39;ZZZ&#39; is not in the ministry registry" in unknown.text
    assert 'value="Biotech"' in unknown.text
    no_csrf = await api.http.post("/app/visions/areas/new", data={"title": "Biotech", "ministry": "MEXT"})
    assert no_csrf.status_code == 403
    listed = await api.http.get("/app/visions", headers=EN)
    assert "Biotech" not in listed.text


async def test_other_roles_read_the_registry_but_may_not_change_it(api: InProcessApi) -> None:
    token = await _signed_in(api, "rev.ito")
    page = await api.http.get("/app/visions", headers=EN)
    assert page.status_code == 200 and "Register a research vision" not in page.text
    refused = await api.http.post(
        "/app/visions/visions/new", data={"csrftoken": token, "title": "Mine", "ministry": "MEXT"}, headers=EN
    )
    assert refused.status_code == 403 and "only programme managers and administrators" in refused.text
    assert (await api.http.get("/app/visions/visions/new", headers=EN)).status_code == 403
    assert (await api.http.get("/app/visions/nonsense/new", headers=EN)).status_code == 422
    async with api.sessionmaker() as s:
        assert (await s.scalars(select(ResearchVision))).all() == []


async def test_the_start_form_offers_the_active_visions_and_refuses_a_retired_one(
    api: InProcessApi, temporal: FakeTemporal
) -> None:
    token = await _signed_in(api, "pm.sato")
    for title in ("Undersea infrastructure protection", "Old vision"):
        await api.http.post("/app/visions/visions/new", data={"csrftoken": token, "title": title, "ministry": "MEXT"})
    async with api.sessionmaker() as s:
        ids = {v.title: v.id for v in (await s.scalars(select(ResearchVision))).all()}
    page = await api.http.get("/app/projects/new", headers=EN)
    assert f'<option value="{ids["Old vision"]}"' in page.text and 'name="vision_id"' in page.text
    await api.http.post(f"/app/visions/visions/{ids['Old vision']}/retire", data={"csrftoken": token})
    form = proposal_form(token, vision_id=str(ids["Old vision"]))
    del form["research_vision"]
    refused = await api.http.post("/app/projects/new", data=form, headers=EN)
    assert refused.status_code == 422 and "is retired: choose an active one" in refused.text
    assert 'id="vision_id-error"' in refused.text and "自律型水中点検ドローン" in refused.text  # beside it, kept
    assert temporal.started == []
    form["vision_id"] = str(ids["Undersea infrastructure protection"])
    started = await api.http.post("/app/projects/new", data=form)
    assert started.status_code == 303, started.text
    [sent] = temporal.started
    assert sent.proposal.vision_id == ids["Undersea infrastructure protection"]
    assert sent.proposal.research_vision == "Undersea infrastructure protection"
    project = await api.http.get(started.headers["location"], headers=EN)
    vision_id = ids["Undersea infrastructure protection"]
    assert f'<a href="/app/projects?vision={vision_id}">Undersea infrastructure protection</a>' in project.text


def _figure(page: str, name: str) -> tuple[int, str]:
    found = re.search(rf'<a href="([^"]*)" data-figure="{re.escape(name)}">(\d+)</a>', page)
    assert found, name
    return int(found.group(2)), found.group(1).replace("&amp;", "&")


async def test_the_dashboard_shows_the_apis_figures_each_linked_to_its_list(
    api: InProcessApi,
    portfolio_rows: dict[str, int],  # noqa: F811
) -> None:
    await _signed_in(api, "pm.sato")
    quantum = portfolio_rows["quantum"]
    page = await api.http.get("/app/dashboard", params={"ministry": "MEXT"}, headers=EN)
    assert page.status_code == 200, page.text
    summary = (await api.call("GET", "/portfolio/summary", "pm.sato", params={"ministry": "MEXT"})).json()
    assert _figure(page.text, "total")[0] == summary["total"] == 5
    count, href = _figure(page.text, f"by-vision-{quantum}")
    assert count == 2 and parse_qs(urlsplit(href).query) == {"ministry": ["MEXT"], "vision": [str(quantum)]}
    listed = await api.http.get(href, headers=EN)
    assert listed.status_code == 200 and "2 projects" in listed.text  # the list behind the figure
    for name, key in (("gates-overdue", "gates_overdue"), ("on-hold", "on_hold"), ("public-use", "public_use")):
        assert _figure(page.text, name)[0] == summary[key], name
    trl_counts = [_figure(page.text, f"by-trl-{t}")[0] for t in range(1, 10)]
    assert trl_counts == [b["count"] for b in summary["by_trl"]]
    assert "Test the sensor at sea earlier" in page.text  # a stop's lessons
    # The filters stay in the address and in the form.
    assert '<option value="MEXT" selected>' in page.text
    # The charts are SVG from pygal, inline as data: images, with nothing from elsewhere.
    charts = re.findall(r'<img src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', page.text)
    assert len(charts) == 3 and all(alt for _, alt in charts)
    svg = base64.b64decode(charts[0][0]).decode()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg and "kozea.github.io" not in svg
    assert not re.search(r'(src|href)="(https?:)?//', svg)
    public_use = await api.http.get(_figure(page.text, "public-use")[1], headers=EN)
    assert "1 project" in public_use.text and "Only projects that achieved public use." in public_use.text


async def test_the_dashboard_is_for_pms_admins_finance_and_ops(api: InProcessApi) -> None:
    await _signed_in(api, "rev.ito")
    page = await api.http.get("/app/visions", headers=EN)
    assert 'href="/app/dashboard"' not in page.text and 'href="/app/visions"' in page.text
    assert (await api.http.get("/app/dashboard", headers=EN)).status_code == 403
    api.http.cookies.clear()
    await _signed_in(api, "fin.suzuki", JA)
    page = await api.http.get("/app/dashboard", headers=JA)
    assert (
        page.status_code == 200 and "ポートフォリオ・ダッシュボード" in page.text and "ステージ・ファネル" in page.text
    )
    junk = await api.http.get("/app/dashboard", params={"trl": "99", "vision": "x", "status": "?"}, headers=JA)
    assert junk.status_code == 200  # a filter that means nothing is "any"
    async with api.sessionmaker() as s:
        assert (await s.scalars(select(AuditEntry).where(AuditEntry.outcome == "error"))).all() == []
