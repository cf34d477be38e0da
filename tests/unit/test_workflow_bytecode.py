"""The workflow sandbox imports the workflow modules afresh for every run it starts: the worker
leaves their bytecode in place first, so no run compiles them from source (PYTHONDONTWRITEBYTECODE
is set on some hosts and in the image, where Python would otherwise never write it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import worker

WORKFLOWS = Path(worker.__file__).resolve().parent / "workflows"


def test_every_workflow_module_has_current_bytecode_after_the_worker_prepares_it() -> None:
    assert worker.workflow_bytecode()
    sources = sorted(WORKFLOWS.rglob("*.py"))
    assert len(sources) > 10
    for source in sources:
        cached = Path(importlib.util.cache_from_source(str(source)))
        assert cached.exists(), f"no bytecode for {source}"
        # What the import system checks before using it: the source's mtime and size in the header.
        header = cached.read_bytes()[:16]
        stat = source.stat()
        assert int.from_bytes(header[8:12], "little") == int(stat.st_mtime) & 0xFFFFFFFF, source
        assert int.from_bytes(header[12:16], "little") == stat.st_size & 0xFFFFFFFF, source
