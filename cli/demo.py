"""The demo portfolio: a dozen projects of both funding ministries, driven through the HTTP API with
the demo users' own logins, so every step is a real workflow command with its rules and audit.

`trlgate up` runs `load_demo` in the background on a fresh data folder (`--no-demo` turns it off).
Each project follows its own short script to the state it shows; a refused step is logged and
that project stays where it got to, the others carry on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("trlgate.demo")
OKU = 100_000_000  # 1 oku yen
ADMIN = "admin"
LIAISONS = {"MOD": "liaison.mod", "MLIT": "liaison.mlit"}
CLEARED_PANEL = ["rev.ito", "rev.kato"]  # SECRET/QS, for the closed project
PANEL = ["rev.ito", "rev.kato", "rev.mori"]
# Long holds and review rounds are a policy choice: the demo's stay put for the audience.
STEADY = {"max_hold_days": 36500, "review_days": 365}
NAMES = {1: "Basic research", 3: "Applied research", 5: "Demonstration", 7: "Social implementation"}
# The registries the demo's proposals name (title: ministry responsible, description), registered
# through the API before the projects start.
MARITIME = "海洋状況把握(MDA)と海洋の安全確保"
SPACE = "宇宙空間の安全で持続的な利用"
RESILIENCE = "防災・減災と国土強靱化"
INFRASTRUCTURE = "重要インフラと通信の安全確保"
BIO = "バイオものづくりによる供給網の強靱化"
VISIONS: dict[str, tuple[str, str]] = {
    MARITIME: ("MEXT", "海洋観測・海底インフラ防護・沿岸監視の技術"),
    SPACE: ("MEXT", "宇宙通信・宇宙状況把握・デブリ対策"),
    RESILIENCE: ("MEXT", "豪雨・地震など大規模災害への備え"),
    INFRASTRUCTURE: ("METI", "通信・電力・サイバー空間の自律性"),
    BIO: ("METI", "バイオ製造による重要物資の供給"),
}
AREAS: dict[str, tuple[str, str]] = {
    "AI": ("METI", "人工知能・データ解析"),
    "量子": ("MEXT", "量子センシング・量子通信"),
    "宇宙": ("MEXT", "衛星・宇宙機"),
    "海洋": ("MEXT", "海洋観測・無人機"),
    "バイオ": ("METI", "バイオテクノロジー"),
}


class DemoStepRefused(Exception):
    """The API refused a step (logged; the project stays where it got to)."""


def should_load_demo(enabled: bool, data_dir: Path) -> bool:
    """Only on a fresh data folder (no Temporal database yet): an existing one is never re-loaded."""
    return enabled and not (data_dir / "temporal.db").exists()


def stage(trl_in: int, trl_out: int, days: int, oku: int, tranches: int = 1) -> dict[str, Any]:
    """A stage with `tranches` equal payments spread over its first half (integer yen, exact sum)."""
    budget = oku * OKU
    base, rest = divmod(budget, tranches)
    step = max(1, days // (2 * tranches))
    return {
        "name": NAMES.get(trl_in, "Research stage"),
        "trl_in": trl_in,
        "trl_out": trl_out,
        "duration_days": days,
        "budget": budget,
        "tranches": [{"offset_days": i * step, "amount": base + (1 if i < rest else 0)} for i in range(tranches)],
    }


def proposal(
    title: str,
    organisation: str,
    ministry: str,
    vision: str,
    stages: list[dict[str, Any]],
    *,
    area: str | None = None,
    pm: str = "pm.sato",
    reviewers: list[str] | None = None,
    public_use: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "title": title,
        "organisation": organisation,
        "programme_manager": pm,
        "funding_ministry": ministry,
        "research_vision": vision,  # the registered vision's title: load_demo names it by id
        "area": area,
        "start_trl": stages[0]["trl_in"],
        "target_trl": stages[-1]["trl_out"],
        "total_budget": sum(s["budget"] for s in stages),
        "stages": stages,
        "reviewers": reviewers or PANEL,
        "public_use_ministries": public_use or ["MOD", "MLIT"],
        "policy": STEADY,
        **extra,
    }


@dataclass
class Api:
    """The product's HTTP API as the demo users see it."""

    http: httpx.AsyncClient
    password: str
    poll: float = 0.2
    timeout: float = 90.0
    tokens: dict[str, str] = field(default_factory=dict)

    async def call(self, method: str, path: str, user: str, **kwargs: Any) -> httpx.Response:
        if user not in self.tokens:
            r = await self.http.post("/auth/token", data={"username": user, "password": self.password})
            if r.status_code != 200:
                raise DemoStepRefused(f"{user} cannot sign in: {r.status_code} {r.text[:200]}")
            self.tokens[user] = r.json()["access_token"]
        return await self.http.request(method, path, headers={"Authorization": f"Bearer {self.tokens[user]}"}, **kwargs)

    async def ok(self, method: str, path: str, user: str, **kwargs: Any) -> Any:
        r = await self.call(method, path, user, **kwargs)
        if r.status_code >= 300:
            raise DemoStepRefused(f"{method} {path} as {user}: {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    async def until(self, probe: Callable[[], Awaitable[Any]], what: str) -> Any:
        """Until `probe` returns something truthy (a refusal counts as "not yet")."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        last: object = None
        while loop.time() < deadline:
            try:
                if value := await probe():
                    return value
            except DemoStepRefused as err:
                last = err
            await asyncio.sleep(self.poll)
        raise DemoStepRefused(f"{what}: not within {self.timeout:g} s ({last})")

    # ---- the steps people take ---------------------------------------------------------------

    async def start(self, body: dict[str, Any]) -> str:
        project = await self.ok("POST", "/projects", body["programme_manager"], json=body)
        return str(project["id"])

    async def gate_open(self, pid: str, pm: str, gate_no: int) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            detail = await self.ok("GET", f"/projects/{pid}", pm)
            return next(
                (g for g in detail["gates"] if g["gate_no"] == gate_no and g["status"] == "open" and g["workflow_id"]),
                None,
            )

        return dict(await self.until(probe, f"{pid} gate {gate_no} open"))

    async def submit_evidence(self, pid: str, pm: str, gate_no: int) -> None:
        gate = await self.gate_open(pid, pm, gate_no)
        required = gate["requirements"]
        evidence = {
            "claimed_trl": required["exit_trl"],
            "deliverables": required["deliverables"],
            "criteria_evidence": {c["key"]: "ステージ報告書 第4章(試験結果)" for c in required["must_meet"]},
        }
        await self.ok("POST", f"/projects/{pid}/gates/{gate_no}/evidence", pm, json=evidence)

    async def review(self, pid: str, gate_no: int, reviewer: str, score: int) -> None:
        """The reviewer declares no conflict, reads, and scores on their own."""

        async def invited() -> dict[str, Any] | None:
            tasks = await self.ok("GET", "/tasks", reviewer, params={"status": "invited", "limit": 500})
            return next((t for t in tasks["items"] if t["project_id"] == pid and t["gate_no"] == gate_no), None)

        task = await self.until(invited, f"{reviewer}'s invitation to {pid} gate {gate_no}")
        await self.ok("POST", f"/tasks/{task['id']}/respond", reviewer, json={"accept": True})
        detail = await self.ok("GET", f"/tasks/{task['id']}", reviewer)
        review = {
            "must_meet": {c["key"]: True for c in detail["must_meet"]},
            "scores": {c["key"]: score for c in detail["should_meet"]},
            "comment": "目標TRLの達成を試験データで確認。次ステージ計画も妥当。"
            if score >= 3
            else "成果が計画に届いていない。",
        }
        await self.ok("POST", f"/tasks/{task['id']}/review", reviewer, json=review)

    async def review_round(
        self, pid: str, body: dict[str, Any], gate_no: int, *, reviews: int | None = None, score: int = 4
    ) -> None:
        pm = body["programme_manager"]
        await self.submit_evidence(pid, pm, gate_no)
        for reviewer in body["reviewers"][:reviews]:
            await self.review(pid, gate_no, reviewer, score)

    async def decide(self, pid: str, pm: str, gate_no: int, decision: dict[str, Any]) -> None:
        await self.ok("POST", f"/projects/{pid}/gates/{gate_no}/decision", pm, json=decision)

    async def offered(self, pid: str, ministry: str) -> dict[str, Any]:
        liaison = LIAISONS[ministry]

        async def probe() -> dict[str, Any] | None:
            rows = await self.ok("GET", "/handoffs", liaison, params={"status": "pending", "limit": 500})
            return next((h for h in rows["items"] if h["project_id"] == pid), None)

        return dict(await self.until(probe, f"{pid} offered to {ministry}"))

    async def accept(self, pid: str, ministry: str, programme: str) -> None:
        handoff = await self.offered(pid, ministry)

        async def answer() -> bool:  # "being prepared" until the package is offered
            await self.ok(
                "POST",
                f"/handoffs/{handoff['id']}/accept",
                LIAISONS[ministry],
                json={"receiving_programme": programme},
            )
            return True

        await self.until(answer, f"{pid} accepted by {ministry}")


# ---- the portfolio ---------------------------------------------------------------------------

Script = Callable[[Api, str, dict[str, Any]], Awaitable[None]]


async def _running(api: Api, pid: str, body: dict[str, Any]) -> None:
    """Nothing to do: the stage runs, its tranches are paid as they fall due."""


async def _in_review(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1, reviews=2)  # the third reviewer has not submitted yet


async def _gate_waiting_for_evidence(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.gate_open(pid, body["programme_manager"], 1)


async def _panel_complete(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1)  # the PM's decision is next


async def _on_hold(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1, score=3)
    await api.decide(
        pid,
        body["programme_manager"],
        1,
        {
            "decision": "hold",
            "justification": "技術的には有望だが、実証フィールド(気象庁との共同観測)の確保まで資金を一時停止する。",
        },
    )


async def _second_stage(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1, score=5)
    await api.decide(pid, body["programme_manager"], 1, {"decision": "go", "justification": "概念実証を達成。"})


async def _four_eyes(api: Api, pid: str, body: dict[str, Any]) -> None:
    """The PM signs the large first tranche; finance's second signature is what it waits for."""

    async def request() -> bool:
        await api.ok("POST", f"/projects/{pid}/tranches/1/1/request", body["programme_manager"])
        return True

    await api.until(request, f"{pid} tranche 1/1 requested")


async def _handoff_offered(api: Api, pid: str, body: dict[str, Any]) -> None:
    await _final_go(api, pid, body)
    for ministry in body["public_use_ministries"]:
        await api.offered(pid, ministry)


async def _completed(api: Api, pid: str, body: dict[str, Any]) -> None:
    await _final_go(api, pid, body)
    for ministry in body["public_use_ministries"]:
        await api.accept(pid, ministry, f"{ministry} 沿岸監視能力向上事業")


async def _final_go(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1, score=5)
    brief = {
        "results_summary": f"{body['title']}: TRL {body['target_trl']} を運用環境で実証。",
        "ip_terms": "国の利用に無償実施権を許諾",
    }
    await api.decide(
        pid, body["programme_manager"], 1, {"decision": "go", "justification": "公的利用へ移行。", "handoff": brief}
    )


async def _killed(api: Api, pid: str, body: dict[str, Any]) -> None:
    await api.review_round(pid, body, 1, score=1)
    await api.decide(
        pid,
        body["programme_manager"],
        1,
        {
            "decision": "kill",
            "justification": "酵素の安定性が目標の1/10にとどまり、次ステージの前提が成り立たない。",
            "lessons": "培養スケールアップ前に温度耐性を小規模で検証すべきだった。"
            "失敗データは共有リポジトリで公開し、後続テーマに引き継ぐ。",
        },
    )


async def _closed(api: Api, pid: str, body: dict[str, Any]) -> None:
    """Need-to-know grants for the cleared panel, the receiving liaison and the cleared operator."""
    for user in [*body["reviewers"], "liaison.mod", "ops.hayashi"]:
        await api.ok("POST", f"/projects/{pid}/grants", ADMIN, json={"username": user, "reason": "審査・受入・運用"})


def portfolio() -> list[tuple[dict[str, Any], Script]]:
    """Twelve projects (MEXT and METI), each with the script that takes it to its state."""
    return [
        (
            proposal(
                "量子センシングによる海底資源探査",
                "東海量子コンソーシアム",
                "MEXT",
                MARITIME,
                [stage(1, 3, 10, 30), stage(3, 5, 730, 60, 2)],
                area="量子",
                performer="perf.aoki",  # the demo performer's consortium: reports and reminders go to them
            ),
            _in_review,
        ),
        (
            proposal(
                "自律型無人潜水機(AUV)の長期運用技術",
                "神戸マリンロボティクス株式会社",
                "METI",
                MARITIME,
                [stage(3, 5, 10, 40), stage(5, 7, 730, 80, 2)],
                area="海洋",
                pm="pm.tanaka",
            ),
            _panel_complete,
        ),
        (
            proposal(
                "線状降水帯の超高精度予測システム",
                "防災気象コンソーシアム(防災科学技術研究所ほか)",
                "MEXT",
                RESILIENCE,
                [stage(1, 3, 10, 25), stage(3, 5, 730, 50, 2)],
                area="AI",
            ),
            _on_hold,
        ),
        (
            proposal(
                "小型衛星コンステレーションによる光通信網",
                "株式会社アストロリンク",
                "METI",
                SPACE,
                [stage(5, 7, 1095, 120, 2), stage(7, 9, 730, 60)],
                area="宇宙",
                public_use=["MOD", "MIC"],
            ),
            _four_eyes,
        ),
        (
            proposal(
                "災害時自律飛行ドローンによる被災状況把握",
                "株式会社スカイレスキュー東海",
                "MEXT",
                RESILIENCE,
                [stage(7, 9, 10, 35)],
                area="AI",
                policy={**STEADY, "handoff": {"deadline_days": 3650, "reminder_days": 365}},
            ),
            _handoff_offered,
        ),
        (
            proposal(
                "沿岸監視用小型合成開口レーダー",
                "横浜レーダーシステムズ株式会社",
                "METI",
                MARITIME,
                [stage(7, 9, 10, 45)],
                area="海洋",
            ),
            _completed,
        ),
        (
            proposal(
                "バイオ製造による高機能酵素の量産",
                "大阪バイオファウンドリー株式会社",
                "MEXT",
                BIO,
                [stage(1, 3, 10, 15), stage(3, 5, 730, 30, 2)],
                area="バイオ",
            ),
            _killed,
        ),
        (
            proposal(
                "量子暗号鍵配送の長距離中継技術",
                "量子通信技術研究組合",
                "MEXT",
                INFRASTRUCTURE,
                [stage(3, 5, 1095, 90, 3), stage(5, 7, 730, 60, 2)],
                area="量子",
                reviewers=CLEARED_PANEL,
                public_use=["MOD"],
                classification="closed",
                label={"level": "SECRET", "compartments": ["QS"]},
            ),
            _closed,
        ),
        (
            proposal(
                "AIによるサイバー攻撃の早期検知基盤",
                "株式会社サイバーディフェンス研究所",
                "METI",
                INFRASTRUCTURE,
                [stage(1, 3, 10, 20), stage(3, 5, 1095, 60, 3)],
                area="AI",
                public_use=["MOD", "NPA"],
            ),
            _second_stage,
        ),
        (
            proposal(
                "次世代パワー半導体(酸化ガリウム)の高信頼化",
                "名古屋パワーデバイス研究コンソーシアム",
                "METI",
                INFRASTRUCTURE,
                [stage(1, 3, 1095, 45, 3), stage(3, 5, 1095, 90, 3)],
                pm="pm.tanaka",
                public_use=["MLIT", "MIC"],
            ),
            _running,
        ),
        (
            proposal(
                "宇宙デブリ除去衛星の捕獲機構",
                "国立研究開発法人 宇宙航空研究開発機構 共同研究チーム",
                "MEXT",
                SPACE,
                [stage(3, 5, 1095, 60, 3), stage(5, 7, 730, 90, 2)],
                area="宇宙",
                public_use=["MOD", "MLIT"],
            ),
            _running,
        ),
        (
            proposal(
                "海中音響通信ネットワークの実海域試験",
                "海洋音響技術株式会社",
                "METI",
                MARITIME,
                [stage(3, 5, 10, 30), stage(5, 7, 730, 70, 2)],
                area="海洋",
                pm="pm.tanaka",
            ),
            _gate_waiting_for_evidence,
        ),
    ]


async def _drive(api: Api, body: dict[str, Any], script: Script) -> tuple[str | None, bool]:
    """(the project's id, whether it reached its state); a refusal is logged, never raised."""
    try:
        pid = await api.start(body)
    except (DemoStepRefused, httpx.HTTPError) as err:
        log.warning("demo: %s not started: %s", body["title"], err)
        return None, False
    try:
        await script(api, pid, body)
    except (DemoStepRefused, httpx.HTTPError) as err:
        log.warning("demo: %s (%s) stopped short of its state: %s", pid, body["title"], err)
        return pid, False
    return pid, True


async def _registered(api: Api, kind: str, entries: dict[str, tuple[str, str]]) -> dict[str, int]:
    """The registry's ids by title, registering (as the administrator) the entries it lacks."""
    ids = {e["title"]: e["id"] for e in await api.ok("GET", f"/{kind}", ADMIN)}
    for title, (ministry, description) in entries.items():
        if title not in ids:
            body = {"title": title, "ministry": ministry, "description": description}
            ids[title] = (await api.ok("POST", f"/{kind}", ADMIN, json=body))["id"]
    return ids


def _naming(body: dict[str, Any], visions: dict[str, int], areas: dict[str, int]) -> dict[str, Any]:
    """The proposal as the API takes it: its vision and area by their registry ids."""
    named = {k: v for k, v in body.items() if k not in ("research_vision", "area")}
    named["vision_id"] = visions[body["research_vision"]]
    if body.get("area"):
        named["area_id"] = areas[body["area"]]
    return named


async def load_demo(base_url: str, password: str, *, poll: float = 0.2, timeout: float = 90.0) -> int:
    """Start the portfolio unless there are projects already; returns how many started (0: skipped)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
        api = Api(http, password, poll=poll, timeout=timeout)
        if (await api.ok("GET", "/projects", ADMIN, params={"limit": 1}))["total"]:
            log.info("demo: projects exist already, nothing loaded")
            return 0
        visions = await _registered(api, "visions", VISIONS)
        areas = await _registered(api, "areas", AREAS)
        bodies = [(_naming(body, visions, areas), script) for body, script in portfolio()]
        results = await asyncio.gather(*(_drive(api, body, script) for body, script in bodies))
    if short := sum(pid is not None and not reached for pid, reached in results):
        log.warning("demo: %d project(s) stopped short of their state (see above)", short)
    return sum(pid is not None for pid, _ in results)
