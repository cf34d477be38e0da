"""What sealing payloads costs, beside the plain pydantic converter measured in the same run.

    .venv/bin/python -m bench.codec [--rounds 2000]

For two payloads the workers move all the time (a project workflow's input with a carried state,
the size continue-as-new hands on; and a gate review's input) it times a full round trip through
the data converter: to payloads and back, as a worker does for every activity, Update and run.
  plain    temporalio.contrib.pydantic's converter (the baseline)
  sealed   the same, with the AES-GCM codec (connection/codec.py)
and prints the rates and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from datetime import UTC, datetime
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter

from cli.exit import hard_exit
from connection.codec import Keyring, data_converter
from domain.gate_review import GateReviewInput
from domain.handoff import HandoffBrief, HandoffKind, HandoffRun
from domain.project import (
    CalendarState,
    GateProgress,
    HandoffsState,
    MoneyState,
    ProjectState,
    ProjectWorkflowInput,
    ReportState,
)
from gates.definitions import gate_for_stage
from tests.support import proposal


def samples() -> dict[str, Any]:
    p = proposal()
    state = ProjectState(
        trl=5,
        stage_index=2,
        calendar=CalendarState(stage_started_at=datetime(2029, 4, 1, tzinfo=UTC)),
        money=MoneyState(
            tranches_paid=[1, 2],
            reports={fy: ReportState(status="accepted", submitted_by="perf.aoki") for fy in range(2026, 2030)},
        ),
        gate=GateProgress(applied=["1/1", "2/1"]),
        handoffs=HandoffsState(
            runs={
                "h": HandoffRun(
                    ministry="MOD",
                    kind=HandoffKind.DEMONSTRATION,
                    workflow_id="w",
                    brief=HandoffBrief(results_summary="x" * 2000, deliverables=["a", "b"]),
                )
            }
        ),
    )
    gate = GateReviewInput(
        project_id="KP-1",
        gate_no=3,
        round=1,
        definition=gate_for_stage(3, p.stage_plan[2]),
        programme_manager="pm.sato",
        panel=list(p.reviewers),
        policy=p.policy,
        seconds_per_day=86400,
        stage_budget=p.stage_plan[2].budget,
    )
    return {"project input": ProjectWorkflowInput(proposal=p, state=state), "gate input": gate}


async def round_trips(converter: DataConverter, value: Any, rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        payloads = await converter.encode([value])
        await converter.decode(payloads, [type(value)])
    return rounds / (time.perf_counter() - started)


async def main(rounds: int) -> None:
    sealed = data_converter(Keyring.generate())
    print(f"{'payload':<16}{'bytes':>8}{'plain /s':>12}{'sealed /s':>12}{'ratio':>8}")
    for name, value in samples().items():
        size = len((await pydantic_data_converter.encode([value]))[0].data)
        await round_trips(sealed, value, 50)  # warm up
        plain_rate = await round_trips(pydantic_data_converter, value, rounds)
        sealed_rate = await round_trips(sealed, value, rounds)
        print(f"{name:<16}{size:>8}{plain_rate:>12,.0f}{sealed_rate:>12,.0f}{sealed_rate / plain_rate:>8.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2000)
    asyncio.run(main(parser.parse_args().rounds))
    hard_exit(0)
