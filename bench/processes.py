"""The deployed shape on one machine: trlgate's own processes (worker, API, mail sink) as
subprocesses of a benchmark, each with its own log, stopped by their PIDs."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from cli.stack import terminate
from tests.support import venv_binary

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(name: str, args: list[str], env: dict[str, str], logs: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`args` run from the checkout with `env` over this process's environment; SIGTERM at the
    end (a worker drains), SIGKILL if it has not stopped 30 s later."""
    log = (logs / f"{name}.log").open("wb")
    proc = subprocess.Popen(args, cwd=REPO, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        terminate(proc, grace=30)
        log.close()


def python(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def trlgate(*args: str) -> list[str]:
    return [venv_binary("trlgate"), *args]


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, timeout: float = 300.0) -> None:
    """Until `url` answers 200 (the API's /health: database and Temporal reachable)."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=5) as http:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before serving")
            try:
                if (await http.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not become healthy in {timeout:.0f} s")
            await asyncio.sleep(0.2)
