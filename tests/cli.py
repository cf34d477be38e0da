"""The `trlgate` command in a test: in this process (typer's runner), or as the installed script.

A run of the installed script costs about 2.5 s of CPU, most of it importing the application, and
the suite runs the command some thirty times; in-process each run costs only its work. The exit
codes, standard output and standard error a test reads are the ones the script gives (the script's
`main` adds only the hard exit, which `tests/test_cli.py` still covers through the script)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from config import get_settings


def trlgate(
    sqlite_url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`trlgate ARGS` against the database at `sqlite_url`, in-process."""
    get_settings.cache_clear()  # the script reads its settings once, from the environment given here
    try:
        result = CliRunner().invoke(
            app,
            list(args),
            input=stdin,
            env={"TRLGATE_DATABASE_URL": sqlite_url, **(env or {})},
            catch_exceptions=False,
        )
    finally:
        get_settings.cache_clear()
    return subprocess.CompletedProcess(["trlgate", *args], result.exit_code, result.stdout, result.stderr)


def trlgate_script(
    sqlite_url: str, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`trlgate ARGS` as the installed console script, in a process of its own."""
    env = {**os.environ, "TRLGATE_DATABASE_URL": sqlite_url, **(env or {})}
    exe = Path(sys.prefix) / "bin" / "trlgate"
    return subprocess.run([str(exe), *args], input=stdin, env=env, capture_output=True, text=True, timeout=60)
