"""Finance's fund pages over HTTP in this process (no Temporal: a stand-in answers the
reconciliation's questions): the fund by ministry and fiscal year as a table and a server-drawn
SVG chart, ceilings set with a reason (and refused with the ledger's reason, what was typed
kept), reversals, a project's statement, the reconciliation explained in words, the forecast
and its what-if (page and API), the CSV exports (UTF-8 with BOM, CRLF, Japanese intact), who
may see what, and the approvals list naming both people of a four-eyes approval."""

from __future__ import annotations

import base64
import csv
import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from api.pseudonyms import pseudonym
from domain.fiscal import fiscal_year, jst_date
from domain.programme import PROGRAMME_CODE
from domain.security import Level
from storage import ledger
from storage.ledger import ScheduledAmount
from storage.models import AuditEntry, Stage, TrancheApproval
from tests.api_inprocess import InProcessApi, inprocess_api
from tests.conftest import DEMO_PASSWORD
from tests.support import ledger_project
from tests.test_web_pages import EN, JA, sign_in, token_of

B = 1_000_000_000
PID = "KP-FUND-1"
TITLE = "量子センサーによる海洋監視の実証"
FY0 = fiscal_year(jst_date(datetime.now(UTC)))  # the forecast starts in this fiscal year


class NoWorkflows:
    """Temporal as the reconciliation sees it when no project's workflow exists."""

    def get_workflow_handle(self, workflow_id: str, **_: Any) -> NoWorkflows:
        return self

    async def describe(self) -> Any:
        raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")

    async def list_workflows(self, query: str, **_: Any) -> AsyncIterator[Any]:
        return
        yield  # visibility knows none of them: each project is then described


@pytest.fixture
async def api(sqlite_url: str) -> AsyncIterator[InProcessApi]:
    async with inprocess_api(sqlite_url, temporal=NoWorkflows()) as api:
        yield api


@asynccontextmanager
async def _client(api: InProcessApi, user: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=api.http._transport, base_url="http://trlgate.test") as http:
        assert (await sign_in(http, user, DEMO_PASSWORD)).status_code == 303
        yield http


async def _books(api: InProcessApi, later_budget: int = 20 * B) -> int:
    """MEXT's ceilings of 5 億円 for FY0..FY0+2; a project in stage 1 (6 億円 over two years: 2
    in FY0, paid, and 4 in FY0+1, reserved) with a stage 2 of `later_budget` over two years.
    Returns the payment's transaction id."""
    async with api.sessionmaker.begin() as s:
        project = ledger_project(PID, PROGRAMME_CODE, "MEXT", 6 * B + later_budget)
        project.title = TITLE
        s.add(project)
        await s.flush()
        s.add_all(
            [
                Stage(
                    project_id=PID,
                    stage_no=1,
                    name="Applied research",
                    trl_in=3,
                    trl_out=5,
                    duration_days=730,
                    budget=6 * B,
                    status="active",
                ),
                Stage(
                    project_id=PID,
                    stage_no=2,
                    name="Demonstration",
                    trl_in=5,
                    trl_out=7,
                    duration_days=730,
                    budget=later_budget,
                    status="planned",
                ),
            ]
        )
        for fy in (FY0, FY0 + 1, FY0 + 2):
            await ledger.set_ceiling(
                s, programme_code=PROGRAMME_CODE, ministry="MEXT", fiscal_year=fy, amount=5 * B, actor="fin.suzuki"
            )
        await ledger.reserve(
            s,
            programme_code=PROGRAMME_CODE,
            project_id=PID,
            stage_no=1,
            ministry="MEXT",
            amount=6 * B,
            schedule=[ScheduledAmount(1, FY0, 2 * B), ScheduledAmount(2, FY0 + 1, 4 * B)],
        )
        paid = await ledger.pay_tranche(
            s, project_id=PID, stage_no=1, tranche_no=1, amount=2 * B, due_at=datetime.now(UTC)
        )
        return paid.transaction_id


def _rows(table_html: str) -> list[list[str]]:
    """A table's body rows as cell texts."""
    body = table_html.split("<tbody>")[1].split("</tbody>")[0]
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
        for row in body.split("<tr>")[1:]
    ]


def _table(page: str, table_id: str) -> str:
    return re.split(f'<table id="{table_id}"[^>]*>', page)[1].split("</table>")[0]


def _csv(response: httpx.Response) -> list[dict[str, str]]:
    raw = response.content
    assert raw.startswith(b"\xef\xbb\xbf"), raw[:20]  # Excel reads UTF-8 only with the BOM
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF rows, no bare LF
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))


async def test_the_fund_by_ministry_and_year_as_a_table_beside_a_server_drawn_chart(api: InProcessApi) -> None:
    await _books(api)
    async with _client(api, "fin.suzuki") as http:
        en = await http.get("/app/finance/fund", headers=EN)
        ja = await http.get("/app/finance/fund", headers=JA)
    assert en.status_code == 200, en.text
    rows = _rows(_table(en.text, "fund-MEXT"))
    by_year = {r[0]: r[1:] for r in rows}
    # ceiling, carried in, reserved, paid, available: FY0 leaves 3 億円, carried into FY0+1.
    assert by_year[f"FY{FY0}"] == ["¥5,000,000,000", "¥0", "¥0", "¥2,000,000,000", "¥3,000,000,000"]
    assert by_year[f"FY{FY0 + 1}"] == ["¥5,000,000,000", "¥3,000,000,000", "¥4,000,000,000", "¥0", "¥4,000,000,000"]
    assert by_year[f"FY{FY0 + 2}"] == ["¥5,000,000,000", "¥4,000,000,000", "¥0", "¥0", "¥9,000,000,000"]
    # The chart: an SVG image from a data: address, with no script and nothing from another origin.
    src = re.search(r'<img class="chart" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]+)"', en.text)
    assert src and "paid, reserved and available" in src.group(2)
    svg = base64.b64decode(src.group(1)).decode()
    assert "<svg" in svg and "<script" not in svg and "Paid" in svg and f"FY{FY0 + 1}" in svg
    assert not [u for u in re.findall(r'(?:href|src)="([^"]+)"', svg) if not u.startswith("#")]
    assert ja.status_code == 200 and "文部科学省" in ja.text and "繰越額" in ja.text
    ja_svg = base64.b64decode(re.search(r'base64,([^"]+)"', ja.text).group(1)).decode()  # type: ignore[union-attr]
    assert "億円" in ja_svg and "支払済み" in ja_svg  # the chart speaks the page's language


async def test_the_csv_exports_open_in_excel_with_japanese_intact(api: InProcessApi) -> None:
    await _books(api)
    async with _client(api, "fin.suzuki") as http:
        fund = _csv(await http.get("/app/finance/fund.csv", headers=JA))
        statement = _csv(await http.get(f"/app/finance/statement/{PID}.csv", headers=JA))
        ledger_rows = _csv(await http.get("/app/finance/ledger.csv", headers=JA))
        en_statement = _csv(await http.get(f"/app/finance/statement/{PID}.csv", headers=EN))
    fy1 = next(r for r in fund if r["ministry"] == "MEXT" and r["fiscal_year"] == str(FY0 + 1))
    assert fy1 == {
        "ministry": "MEXT",
        "ministry_name": "文部科学省",
        "fiscal_year": str(FY0 + 1),
        "ceiling": str(5 * B),
        "carried_in": str(3 * B),
        "reserved": str(4 * B),
        "paid": "0",
        "available": str(4 * B),
    }
    assert {(r["project_title"], r["funding_ministry_name"]) for r in statement} == {(TITLE, "文部科学省")}
    assert {r["kind"] for r in statement} == {"reserve", "pay"} and sum(int(r["amount"]) for r in statement) == 0
    assert {r["funding_ministry_name"] for r in en_statement} == {
        "Ministry of Education, Culture, Sports, Science and Technology"
    }
    assert any(r["project_id"] == PID for r in ledger_rows)
    # The API's CSVs are written the same way.
    r = await api.call("GET", f"/projects/{PID}/statement.csv", "fin.suzuki")
    assert {row["project_title"] for row in _csv(r)} == {TITLE}
    assert "filename*=UTF-8''statement-KP-FUND-1.csv" in r.headers["content-disposition"]
    assert _csv(await api.call("GET", "/fund/ledger.csv", "fin.suzuki"))


async def test_only_finance_changes_and_the_apis_fund_readers_read(api: InProcessApi) -> None:
    """The pages read the fund with the API's rule (api.deps.FUND_READERS: finance, admin, ops and
    programme managers); only finance changes it or exports the ledger."""
    await _books(api)
    pages = ["/app/finance/fund", "/app/finance/forecast", "/app/finance/reconciliation", "/app/finance/fund.csv"]
    for user in ("rev.ito", "perf.aoki"):
        async with _client(api, user) as http:
            for url in [*pages, "/app/finance/reversals", "/app/finance/forecast.csv"]:
                r = await http.get(url, headers=EN)
                assert r.status_code == 403 and TITLE not in r.text, (user, url)
                api_twin = url.removeprefix("/app/finance").replace("/fund.csv", "/fund").replace(".csv", "")
                if api_twin in ("/fund", "/forecast", "/reconciliation"):
                    path = "/fund" if api_twin == "/fund" else f"/fund{api_twin}"
                    assert (await api.call("GET", path, user)).status_code == 403, (user, path)
    for user in ("pm.tanaka", "ops.kimura"):
        async with _client(api, user) as http:
            for url in pages:
                assert (await http.get(url, headers=EN)).status_code == 200, (user, url)
            assert (await http.get("/app/finance/reversals", headers=EN)).status_code == 403
            assert (await http.get("/app/finance/ledger.csv", headers=EN)).status_code == 403  # finance's export
    async with _client(api, "admin") as http:
        for url in pages:
            assert (await http.get(url, headers=EN)).status_code == 200, url
        fund = await http.get("/app/finance/fund", headers=EN)
        assert "Set a ceiling" not in fund.text and "/app/finance/reversals" not in fund.text  # reads only
        assert (await http.get("/app/finance/reversals", headers=EN)).status_code == 403
        refused = await http.post(
            "/app/finance/fund/ceilings",
            data={"csrftoken": token_of(fund), "ministry": "MEXT", "fiscal_year": FY0, "amount": 1, "reason": "no"},
            headers=EN,
        )
        assert refused.status_code == 403
        statement = await http.get(f"/app/finance/statement/{PID}", headers=EN)
        assert statement.status_code == 200 and "Reverse" not in statement.text


async def test_a_ceiling_is_set_with_a_reason_and_refused_with_the_ledgers(api: InProcessApi) -> None:
    await _books(api)
    async with _client(api, "fin.yamada") as http:
        page = await http.get("/app/finance/fund", headers=EN)
        form = {"csrftoken": token_of(page), "ministry": "MEXT", "fiscal_year": str(FY0 + 3)}
        done = await http.post(
            "/app/finance/fund/ceilings",
            data={**form, "amount": "7,000,000,000", "reason": "補正予算の配分"},
            headers=EN,
        )
        assert done.status_code == 303 and done.headers["location"] == "/app/finance/fund?done=ceiling"
        shown = await http.get(done.headers["location"], headers=EN)
        assert "The ceiling was set." in shown.text
        row = next(r for r in _rows(_table(shown.text, "ceilings")) if r[1] == f"FY{FY0 + 3}")
        assert row[2] == "¥7,000,000,000" and row[3].startswith("fin.yamada") and row[4] == "補正予算の配分"
        # No reason: 422 beside the form, what was typed kept.
        no_reason = await http.post(
            "/app/finance/fund/ceilings", data={**form, "amount": "123456", "reason": ""}, headers=EN
        )
        assert no_reason.status_code == 422 and "reason: String should have at least 3 characters" in no_reason.text
        assert 'value="123456"' in no_reason.text and f'value="{FY0 + 3}"' in no_reason.text
        nonsense = await http.post(
            "/app/finance/fund/ceilings", data={**form, "amount": "lots", "reason": "why not"}, headers=EN
        )
        assert nonsense.status_code == 422 and "amount:" in nonsense.text and "why not" in nonsense.text
        # Below what is committed to FY0+1 (4 億円 reserved): the ledger's refusal, 409.
        below = await http.post(
            "/app/finance/fund/ceilings",
            data={**form, "fiscal_year": str(FY0 + 1), "amount": "100", "reason": "cut"},
            headers=EN,
        )
        assert below.status_code == 409 and "is below what is committed" in below.text and 'value="100"' in below.text
        unknown = await http.post(
            "/app/finance/fund/ceilings", data={**form, "ministry": "MOD", "amount": "1", "reason": "a try"}, headers=EN
        )
        assert unknown.status_code == 404 and "MOD funds no allocation" in unknown.text
    async with api.sessionmaker() as s:
        entries = (await s.scalars(select(AuditEntry).where(AuditEntry.action == "set_ceiling"))).all()
    mine = [(e.outcome, e.detail.get("reason", "")) for e in entries if e.actor == "fin.yamada"]
    assert mine[0] == ("ok", "補正予算の配分")  # the reason the page asked for, in the audit log
    assert [o for o, _ in mine] == ["ok", "rejected"] and "below what is committed" in mine[1][1]


async def test_a_payment_is_reversed_from_its_statement_with_a_reason(api: InProcessApi) -> None:
    payment = await _books(api)
    async with _client(api, "fin.suzuki") as http:
        statement = await http.get(f"/app/finance/statement/{PID}", headers=EN)
        assert statement.status_code == 200 and TITLE in statement.text
        assert "Ministry of Education, Culture, Sports, Science and Technology (MEXT)" in statement.text
        link = f'href="/app/finance/reversals?transaction_id={payment}"'
        assert link in statement.text
        form_page = await http.get(f"/app/finance/reversals?transaction_id={payment}", headers=EN)
        assert f'value="{payment}"' in form_page.text
        form = {"csrftoken": token_of(form_page), "transaction_id": str(payment)}
        no_reason = await http.post("/app/finance/reversals", data={**form, "reason": ""}, headers=EN)
        assert no_reason.status_code == 422 and "reason:" in no_reason.text and f'value="{payment}"' in no_reason.text
        missing = await http.post(
            "/app/finance/reversals", data={**form, "transaction_id": "999999", "reason": "typo"}, headers=EN
        )
        assert missing.status_code == 404 and "there is no ledger transaction 999999" in missing.text
        done = await http.post("/app/finance/reversals", data={**form, "reason": "銀行から返金"}, headers=EN)
        assert done.status_code == 303, done.text
        shown = await http.get(done.headers["location"], headers=EN)
        assert f"Transaction {payment} was reversed by transaction" in shown.text
        # Twice: the same reversal, not a second one (the ledger's reversal is keyed by what it reverses).
        again = await http.post("/app/finance/reversals", data={**form, "reason": "twice"}, headers=EN)
        assert again.status_code == 303 and again.headers["location"] == done.headers["location"]
        after = await http.get(f"/app/finance/statement/{PID}", headers=EN)
    assert link not in after.text and "Reversed" in after.text and "銀行から返金" in after.text
    assert _rows(_table(after.text, "statement"))[-1][1].startswith("Reversal")


async def test_a_statement_for_someone_who_may_not_read_it_is_refused(api: InProcessApi) -> None:
    await _books(api)
    async with _client(api, "fin.suzuki") as http:
        assert (await http.get("/app/finance/statement/KP-NOPE", headers=EN)).status_code == 404
        found = await http.get(f"/app/finance/statement?project_id={PID}", headers=EN)
        assert found.status_code == 303 and found.headers["location"] == f"/app/finance/statement/{PID}"
        bad = await http.get("/app/finance/statement?project_id=%3Cscript%3E", headers=EN)
        assert bad.status_code == 422 and "Type a project id" in bad.text
    async with _client(api, "perf.aoki") as http:
        assert (await http.get(f"/app/finance/statement/{PID}.csv", headers=EN)).status_code == 403


async def test_each_drift_is_explained_in_words(api: InProcessApi) -> None:
    await _books(api)
    async with _client(api, "fin.suzuki") as http:
        en = await http.get("/app/finance/reconciliation", headers=EN)
        ja = await http.get("/app/finance/reconciliation", headers=JA)
    assert en.status_code == 200
    [row] = [r for r in _rows(_table(en.text, "drifts")) if r[0] == PID]
    assert row[1].startswith(f"No workflow project-{PID} exists for this project.")
    assert "Its money cannot move until operations restart it." in row[2]
    assert "ワークフロー project-KP-FUND-1 が存在しません。" in ja.text and "運用担当が再開するまで" in ja.text
    async with inprocess_api(api_url(api)) as offline, _client(offline, "fin.suzuki") as http:
        down = await http.get("/app/finance/reconciliation", headers=EN)
    assert down.status_code == 200 and "The reconciliation could not run: Temporal is not connected" in down.text


def api_url(api: InProcessApi) -> str:
    return str(api.sessionmaker.kw["bind"].url)


async def test_the_forecast_shows_the_year_the_programme_runs_short_and_the_what_if(api: InProcessApi) -> None:
    await _books(api)  # stage 2: 20 億円 in FY0+2 and FY0+3, 10 a year
    # FY0+2: 5 ceiling + 4 carried in - 10 planned = -1 億円: short. With a 50 % kill rate at the
    # gate before stage 2: 5 planned, 4 left.
    plain = (await api.call("GET", "/fund/forecast", "fin.suzuki")).json()
    [mext] = [m for m in plain["ministries"] if m["ministry"] == "MEXT"]
    y2 = mext["years"][2]
    assert (y2["fiscal_year"], y2["ceiling"], y2["carried_in"], y2["planned"], y2["available"]) == (
        FY0 + 2,
        5 * B,
        4 * B,
        10 * B,
        -1 * B,
    )
    assert mext["short_in"] == plain["short_in"] == FY0 + 2 and len(mext["years"]) == 10
    what_if = (await api.call("GET", "/fund/forecast?kill_rate=0.5&recycle_rate=0", "fin.suzuki")).json()
    assert what_if["short_in"] is None and what_if["ministries"][1]["years"][2]["available"] == 4 * B
    for bad in ("kill_rate=1.5", "kill_rate=-0.1", "recycle_rate=abc", "kill_rate=NaN", "kill_rate=0.00001"):
        r = await api.call("GET", f"/fund/forecast?{bad}", "fin.suzuki")
        assert r.status_code == 422, (bad, r.text)
    assert (await api.call("GET", "/fund/forecast", "perf.aoki")).status_code == 403

    async with _client(api, "fin.suzuki") as http:
        page = await http.get("/app/finance/forecast", headers=EN)
        assert page.status_code == 200 and f"The programme runs short in FY{FY0 + 2}." in page.text
        row = next(r for r in _rows(_table(page.text, "forecast-MEXT")) if r[0] == f"FY{FY0 + 2}")
        assert row[1:] == ["¥5,000,000,000", "¥4,000,000,000", "¥0", "¥10,000,000,000", "-¥1,000,000,000 short"]
        assert 'src="data:image/svg+xml;base64,' in page.text
        relaxed = await http.get("/app/finance/forecast?kill_pct=50&recycle_pct=0", headers=EN)
        assert "Within the ceilings that are set." in relaxed.text and 'value="50"' in relaxed.text
        bad = await http.get("/app/finance/forecast?kill_pct=150&recycle_pct=x", headers=EN)
        assert bad.status_code == 422 and "kill_pct: 150 is not between 0 and 100" in bad.text
        assert 'value="150"' in bad.text and 'value="x"' in bad.text  # what was typed stays
        ja = await http.get("/app/finance/forecast", headers=JA)
        assert f"プログラムは{FY0 + 2}年度に不足します。" in ja.text
        ja_bad = await http.get("/app/finance/forecast?kill_pct=12.345", headers=JA)
        assert ja_bad.status_code == 422 and "kill_pct：12.345 の小数は2桁までです" in ja_bad.text
        rows = _csv(await http.get("/app/finance/forecast.csv?kill_pct=50", headers=JA))
    mext_rows = [r for r in rows if r["ministry"] == "MEXT"]
    assert len(mext_rows) == 10 and mext_rows[2]["available"] == str(4 * B) and mext_rows[2]["kill_rate"] == "0.5"
    assert mext_rows[0]["ministry_name"] == "文部科学省" and rows[-1]["ministry_name"] == "全省"


async def test_the_approvals_list_names_both_people_of_a_recent_approval(api: InProcessApi) -> None:
    await _books(api)
    async with api.sessionmaker.begin() as s:
        now = datetime.now(UTC)
        s.add(
            TrancheApproval(
                project_id=PID,
                stage_no=1,
                tranche_no=2,
                amount=4 * B,
                requested_by="fin.suzuki",
                requested_at=now,
                approved_by="fin.yamada",
                approved_at=now,
            )
        )
    async with _client(api, "fin.suzuki") as http:
        page = await http.get("/app/finance/approvals", headers=EN)
    [row] = _rows(_table(page.text, "approved"))
    assert row[0] == f"{TITLE} {PID}" and row[3].startswith("fin.suzuki") and row[4].startswith("fin.yamada")
    assert row[5] == "Not paid yet"


async def test_a_closed_projects_money_counts_but_its_name_and_statement_stay_withheld(api: InProcessApi) -> None:
    await _books(api)
    secret_title = "秘匿の研究"
    async with api.sessionmaker.begin() as s:
        closed = ledger_project("KP-CLOSED-1", PROGRAMME_CODE, "MEXT", 2 * B)
        closed.title = secret_title
        closed.classification = "closed"
        closed.label_level = int(Level.SECRET)
        closed.label_compartments = ["QS"]
        s.add(closed)
        await s.flush()
        await ledger.reserve(
            s,
            programme_code=PROGRAMME_CODE,
            project_id="KP-CLOSED-1",
            stage_no=1,
            ministry="MEXT",
            amount=B,
            schedule=[ScheduledAmount(1, FY0 + 1, B)],
        )
    alias = pseudonym(api.secret, "KP-CLOSED-1")
    async with _client(api, "fin.suzuki") as http:  # uncleared, no grant
        statement = await http.get("/app/finance/statement/KP-CLOSED-1", headers=EN)
        assert statement.status_code == 403 and secret_title not in statement.text
        csv_refused = await http.get("/app/finance/statement/KP-CLOSED-1.csv", headers=EN)
        assert csv_refused.status_code == 403 and secret_title.encode() not in csv_refused.content
        fund = await http.get("/app/finance/fund", headers=EN)
        reconciliation = await http.get("/app/finance/reconciliation", headers=EN)
        forecast = await http.get("/app/finance/forecast", headers=EN)
        ledger_text = (await http.get("/app/finance/ledger.csv", headers=EN)).content.decode("utf-8-sig")
    # Its 1 億円 is in FY0+1's reserved figure (4 + 1), with no name anywhere.
    row = next(r for r in _rows(_table(fund.text, "fund-MEXT")) if r[0] == f"FY{FY0 + 1}")
    assert row[3] == "¥5,000,000,000"
    for text in (fund.text, reconciliation.text, forecast.text, ledger_text):
        assert "KP-CLOSED-1" not in text and secret_title not in text
    assert alias in reconciliation.text and f'href="/app/finance/statement/{alias}"' not in reconciliation.text
    assert alias in ledger_text


async def test_with_every_year_ceilinged_the_forecast_shows_the_room_for_new_projects(api: InProcessApi) -> None:
    async with api.sessionmaker.begin() as s:
        for ministry in ("MEXT", "METI"):
            for fy in range(FY0, FY0 + 10):
                await ledger.set_ceiling(
                    s, programme_code=PROGRAMME_CODE, ministry=ministry, fiscal_year=fy, amount=B, actor="fin.suzuki"
                )
    async with _client(api, "fin.suzuki") as http:
        page = await http.get("/app/finance/forecast", headers=EN)
    assert "Within the ceilings for the next ten years" in page.text
    total = _rows(_table(page.text, "forecast-total"))
    # 1 億円 a year each, nothing committed: the unspent ceiling carries, so the room grows by 2 a year.
    assert [r[-1] for r in total[:3]] == ["¥2,000,000,000", "¥4,000,000,000", "¥6,000,000,000"]
