"""Record the v1 baseline of stored histories: `python -m tests.histories.record --replace`.

Every path in tests/histories/scenarios.py runs, a few at a time (`--parallel`), against one
throw-away stack (a dev Temporal server, a SQLite database, one worker); each project's runs and child workflows are
saved as `project-<id>-run<n>.json` and `<child workflow id>.json`. Nothing is written unless every
path ran to its end and its histories cover what tests/histories/coverage.py asks of it.

`--out DIR` records elsewhere (a scratch directory, for a trial); into a directory that holds
histories already it records only with `--replace`, which removes them: the baseline is replaced
as a whole, never added to. `--only a,b` records some paths (for working on a scenario).
A patch's new side: `--tag v2 --only <paths> --out DIR` records projects HIST-v2-<path>; copy
those files into tests/histories and name them, with the baseline's, in workflows/patches.py.
Re-record only when the baseline is rebuilt on purpose (a release that retires patches): from v1
on, a change to the workflows' commands is patched, and the stored files are what workflows
started before it look like to the new code.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

from temporalio.client import Client, WorkflowFailureError, WorkflowHistory

from cli.exit import hard_exit
from tests.histories.coverage import BASELINE, check_path, facts, project_workflow_id
from tests.histories.drive import BASELINE_TAG, TAG, Stack
from tests.histories.scenarios import SCENARIOS, prepare
from tests.support import embedded_stack
from worker import build_worker

HERE = Path(__file__).resolve().parent
PATTERN = "project-*.json"
PARALLEL = 4


async def runs_of(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow, first to last, walking back from the latest along continue-as-new."""
    histories: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.insert(0, history)
        started = history.events[0].workflow_execution_started_event_attributes
        run_id = started.continued_execution_run_id or None
        if run_id is None:
            return histories


async def save_path(client: Client, path: str, out: Path) -> int:
    """Write one path's histories (its project's runs, then every child it started); returns the count."""
    wid = project_workflow_id(path, TAG.get())
    runs = await runs_of(client, wid)
    children: dict[str, str] = {}
    for n, history in enumerate(runs, 1):
        (out / f"{wid}-run{n}.json").write_text(history.to_json())
        children.update(facts(history).children)
    for child_id in sorted(children):
        handle = client.get_workflow_handle(child_id)
        try:  # a withdrawn hand-off or a cancelled round may still be winding down
            await asyncio.wait_for(handle.result(), 60)
        except WorkflowFailureError:
            pass  # cancelled: its history is complete all the same
        (out / f"{child_id}.json").write_text((await handle.fetch_history()).to_json())
    return len(runs) + len(children)


async def record(paths: list[str], out: Path, parallel: int = PARALLEL) -> dict[str, int]:
    async with embedded_stack() as (client, sm):
        async with build_worker(client, "record", sm):
            stack = Stack(client, sm, "record")
            await prepare(stack)
            # A few paths at a time: all at once starve the one worker (workflow tasks of seconds).
            room = asyncio.Semaphore(parallel)

            async def run(path: str) -> None:
                async with room:
                    await SCENARIOS[path](stack)

            results = await asyncio.gather(*(run(p) for p in paths), return_exceptions=True)
            failed = {p: r for p, r in zip(paths, results, strict=True) if isinstance(r, BaseException)}
            for p, err in failed.items():
                print(f"FAILED {p}: {type(err).__name__}: {err}", file=sys.stderr)
            if failed:
                raise SystemExit(f"{len(failed)} of {len(paths)} paths failed; nothing written")
            return {p: await save_path(client, p, out) for p in paths}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.histories.record", description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE, help="where the histories go (default: %(default)s)")
    parser.add_argument("--replace", action="store_true", help="remove the histories stored there first")
    parser.add_argument("--parallel", type=int, default=PARALLEL, help="paths run at once (default: %(default)s)")
    parser.add_argument("--tag", default=BASELINE_TAG, help="projects are HIST-<tag>-<path> (default: %(default)s)")
    parser.add_argument("--only", default="", help="comma-separated paths (default: all of them)")
    args = parser.parse_args(argv)
    paths = [p for p in args.only.split(",") if p] or list(SCENARIOS)
    if unknown := sorted(set(paths) - set(SCENARIOS)):
        parser.error(f"unknown paths {unknown}; known: {', '.join(SCENARIOS)}")
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    stored = sorted(out.glob(PATTERN))
    if stored and args.only:
        parser.error(f"{out} holds {len(stored)} histories: --only records into an empty directory")
    if stored and not args.replace:
        parser.error(f"{out} holds {len(stored)} histories: --replace removes them (the baseline is never added to)")

    if not args.tag.isalnum():
        parser.error(f"--tag {args.tag!r}: letters and digits only")
    TAG.set(args.tag)
    began = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        counts = asyncio.run(record(paths, scratch, args.parallel))
        problems = [line for p in paths for line in check_path(scratch, p, args.tag)]
        if problems:
            print("\n".join(problems), file=sys.stderr)
            print("the recorded histories miss what their paths must cover; nothing written", file=sys.stderr)
            return 1
        for old in stored:
            old.unlink()
        for new in sorted(scratch.glob(PATTERN)):
            shutil.move(new, out / new.name)
    seconds = time.monotonic() - began
    for p in paths:
        print(f"{p}: {counts[p]} histories")
    print(f"recorded {sum(counts.values())} histories of {len(paths)} paths into {out} in {seconds:.1f} s")
    if set(paths) != set(BASELINE):
        print("note: not every path was recorded; the replay test checks the whole baseline", file=sys.stderr)
    return 0


if __name__ == "__main__":
    hard_exit(main())
