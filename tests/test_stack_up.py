"""`trlgate up` (the README's first command) as a real process: it serves, it works, Ctrl-C stops it all."""

from __future__ import annotations

import json
import os
import signal
import smtplib
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import httpx
from temporalio.client import Client

from tests.api_stack import free_port
from tests.support import CONVERTER, assert_eventually
from tests.test_api_lifecycle import proposal_body


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes (its parent has exited or will reap it).
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


async def test_up_serves_the_whole_stack_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    temporal_port, ui_port, api_port, smtp_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "TRLGATE_DATA_DIR": str(tmp_path),
        "TRLGATE_TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TRLGATE_TEMPORAL_UI_PORT": str(ui_port),
        "TRLGATE_API_PORT": str(api_port),
        "TRLGATE_TASK_QUEUE": "up-test",
        "TRLGATE_SMTP_PORT": str(smtp_port),
    }
    env.pop("TRLGATE_DATABASE_URL", None)
    up = subprocess.Popen(
        # The demo portfolio's loader has its own test (tests/test_demo_portfolio.py); here it would
        # only load the machine while this test times the stack's start.
        [str(Path(sys.prefix) / "bin" / "trlgate"), "up", "--no-demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{api_port}"
    children: list[int] = []
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:

            async def healthy() -> bool:
                assert up.poll() is None, up.stdout.read() if up.stdout else ""
                return bool((await http.get("/health")).json().get("status") == "ok")

            await assert_eventually(
                healthy, "the stack healthy", timeout=120, interval=0.5, ignoring=(httpx.HTTPError,)
            )
            ui = await http.get(f"http://127.0.0.1:{ui_port}/")
            assert ui.status_code == 200  # the Temporal Web UI
            with closing(smtplib.SMTP("127.0.0.1", smtp_port, timeout=10)) as smtp:
                assert smtp.noop()[0] == 250  # the local mail sink
            pages = await http.get("/app/sign-in", headers={"Accept-Language": "ja"})
            assert pages.status_code == 200 and "サインイン" in pages.text  # the workbench
            token = (await http.post("/auth/token", data={"username": "pm.sato", "password": "trlgate-demo"})).json()[
                "access_token"
            ]
            r = await http.post("/projects", json=proposal_body(), headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 201, r.text
            project_id = r.json()["id"]
            # A local client cannot name another address for itself (sign-in throttling is per address).
            forged = {"X-Forwarded-For": "203.0.113.9"}
            guess = await http.post("/auth/token", data={"username": "pm.sato", "password": "guess"}, headers=forged)
            assert guess.status_code == 401

        client = await Client.connect(f"127.0.0.1:{temporal_port}", data_converter=CONVERTER)

        async def listed() -> list[str]:
            return [w.id async for w in client.list_workflows(f'ProjectId="{project_id}" AND ProjectStatus="active"')]

        # Visibility is eventually consistent.
        found = await assert_eventually(listed, "the project listed by its search attributes", interval=0.1, timeout=30)
        assert found == [f"project-{project_id}"]
        children = [
            int(p) for p in subprocess.run(["pgrep", "-P", str(up.pid)], capture_output=True, text=True).stdout.split()
        ]
        assert len(children) == 4  # Temporal dev server, mail sink, worker, API
    finally:
        up.send_signal(signal.SIGINT)
        out, _ = up.communicate(timeout=60)
    assert up.returncode == 0, out
    assert "trlgate is running" in out and "pm.sato" in out and f"http://127.0.0.1:{ui_port}" in out
    assert "stopped temporal dev server" in out and "stopped mail sink" in out
    assert not [pid for pid in children if _alive(pid)]
    assert (tmp_path / "trlgate.db").exists() and (tmp_path / "temporal.db").exists()
    with closing(sqlite3.connect(tmp_path / "trlgate.db")) as db:
        logins = db.execute("SELECT detail FROM audit_log WHERE action = 'login' AND outcome = 'rejected'").fetchall()
    assert [json.loads(detail)["address"] for (detail,) in logins] == ["127.0.0.1"]
