"""`trlgate up`: the whole stack on embedded defaults, as child processes stopped by PID."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from cli.demo import load_demo, should_load_demo
from config import REPO_ROOT, Settings
from domain import search_attributes as sa
from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.seed import DEMO_USERS, seed_demo

console = Console()


def _bin(name: str) -> str:
    candidate = Path(sys.prefix) / "bin" / name
    return str(candidate) if candidate.exists() else name


def wait_for_port(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.2)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f}s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    env: dict[str, str]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def spawn(self, name: str, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        out = log.open("ab")
        proc = subprocess.Popen(args, cwd=REPO_ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        console.print(f"[dim]started {name} (pid {proc.pid}), log {log}[/dim]")
        return proc

    def stop(self) -> None:
        """Stop children by PID in reverse start order: SIGTERM, then SIGKILL after a grace period."""
        for name, proc in reversed(list(self.procs.items())):
            terminate(proc, grace=15)
            console.print(f"[dim]stopped {name} (pid {proc.pid})[/dim]")


def terminate(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM (a worker drains), then SIGKILL if it has not stopped after `grace` seconds."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def run_stack(settings: Settings, *, demo: bool = True) -> int:
    data = settings.data_dir
    load_demo = should_load_demo(demo, data)  # decided before Temporal creates its database
    logs = data / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    host, _, port = settings.temporal_address.partition(":")
    env = {
        **os.environ,
        "TRLGATE_DATA_DIR": str(data),
        "TRLGATE_SECONDS_PER_DAY": str(settings.seconds_per_day),
        "TRLGATE_API_HOST": settings.api_host,
        "TRLGATE_API_PORT": str(settings.api_port),
        "TRLGATE_FORWARDED_ALLOW_IPS": settings.forwarded_allow_ips,
    }
    stack = Stack(settings, env)
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    # The dev server's own UI, behind the proxy that listens on temporal_ui_port.
    ui_backend = settings.temporal_ui_backend_port or free_port()
    try:
        temporal = stack.spawn(
            "temporal dev server",
            [
                _bin("temporal"),
                "server",
                "start-dev",
                "--ip",
                host,
                "--port",
                port,
                "--ui-ip",
                host,
                "--ui-port",
                str(ui_backend),
                "--db-filename",
                str(data / "temporal.db"),
                "--namespace",
                settings.temporal_namespace,
                "--log-level",
                "warn",
                # The UI opens sealed payloads through the API's codec endpoints (cleared ops only),
                # on its own origin (cli/ui_proxy.py): the browser sends the codec cookie there.
                "--ui-codec-endpoint",
                f"{settings.resolved_temporal_ui_url()}/codec",
                *sa.cli_flags(),
            ],
            logs / "temporal.log",
        )
        wait_for_port(host, int(port), 60, temporal)
        proxy = stack.spawn(
            "temporal ui proxy",
            [
                sys.executable,
                "-m",
                "cli.ui_proxy",
                "--port",
                str(settings.temporal_ui_port),
                "--ui",
                f"http://{host}:{ui_backend}",
                "--api",
                f"http://{settings.api_host}:{settings.api_port}",
            ],
            logs / "ui-proxy.log",
        )
        wait_for_port("127.0.0.1", settings.temporal_ui_port, 30, proxy)
        console.print("applying migrations and seeding the demo programme ...")
        settings.resolved_jwt_secret()  # create them once, before the API and worker read them
        migrate.upgrade(settings.resolved_database_url)
        created = asyncio.run(_seed(settings))
        if settings.mail_sink:
            # The embedded default's mail server: .eml files under data/mail (activities/mail_sink.py).
            port = str(settings.smtp_port)
            sink = stack.spawn(
                "mail sink",
                [_bin("trlgate"), "mail-sink", "--host", "127.0.0.1", "--port", port],
                logs / "mail-sink.log",
            )
            wait_for_port("127.0.0.1", settings.smtp_port, 30, sink)
        worker = stack.spawn("worker", [sys.executable, "-m", "worker"], logs / "worker.log")
        api = stack.spawn("api", [sys.executable, "-m", "api"], logs / "api.log")
        wait_for_port(settings.api_host, settings.api_port, 60, api)
        _print_banner(settings, created)
        if load_demo:
            threading.Thread(target=_load_demo, args=(settings,), name="demo portfolio", daemon=True).start()
        while not stopping:
            for name, proc in stack.procs.items():
                if proc.poll() is not None:
                    console.print(f"[red]{name} exited with {proc.returncode}; see {logs}[/red]")
                    stopping = True
            if worker.poll() is not None:
                break
            time.sleep(0.5)
        return 0 if all(p.poll() in (None, 0, -signal.SIGTERM) for p in stack.procs.values()) else 1
    finally:
        console.print("stopping ...")
        stack.stop()


def _load_demo(settings: Settings) -> None:
    """In the background, so the stack serves (and Ctrl-C stops it) while the portfolio loads."""
    console.print("loading the demo portfolio ...")
    try:
        started = asyncio.run(load_demo(f"http://{settings.api_host}:{settings.api_port}", settings.demo_password))
    except Exception as err:  # a demo that cannot load must not take the stack down with it
        console.print(f"[yellow]demo portfolio not loaded: {err!r}[/yellow]")
        return
    console.print(f"demo portfolio ready: {started} projects" if started else "demo portfolio: projects exist already")


async def _seed(settings: Settings) -> int:
    engine = make_engine(settings.resolved_database_url)
    try:
        return len(await seed_demo(make_sessionmaker(engine), settings.demo_password))
    finally:
        await engine.dispose()


def _print_banner(settings: Settings, created: int) -> None:
    api = f"http://{settings.api_host}:{settings.api_port}"
    console.print(f"\n[bold green]trlgate is running[/bold green] (one simulated day = {settings.seconds_per_day} s)")
    console.print(f"  Workbench (web pages):    {api}/app/")
    console.print(f"  API and interactive docs: {api}/docs")
    console.print(
        f"  Temporal Web UI:          http://127.0.0.1:{settings.temporal_ui_port}"
        " (payloads open once an ops user signed in to the workbench)"
    )
    console.print(f"  Database:                 {settings.resolved_database_url}")
    if settings.mail_sink:
        console.print(f"  Mail (.eml files):        {settings.resolved_mail_dir}")
    table = Table(title=f"Demo logins (password: {settings.demo_password})" + ("" if created else " - existing"))
    table.add_column("username")
    table.add_column("role")
    table.add_column("who")
    for u in DEMO_USERS:
        table.add_row(u.username, ", ".join(r.value for r in u.roles), u.full_name)
    console.print(table)
    console.print("Press Ctrl-C to stop everything.\n")
