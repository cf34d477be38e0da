"""domain/gate_decision.py: each decision's new state and the effect the workflow runs next."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from domain.gate_decision import NextStep, apply_decision, carried_out, held_round_over, recycled
from domain.gate_review import GateDecisionInput, GateOutcome
from domain.handoff import HandoffBrief
from domain.programme_clock import ProgrammeClock
from domain.project import Conditions, Decision, Phase, ProjectState, Recommendation

NOW = datetime(2027, 1, 10, tzinfo=UTC)
CLOCK = ProgrammeClock(datetime(2026, 5, 1, tzinfo=UTC), date(2026, 4, 1), seconds_per_day=60)
PM = "pm.sato"


def outcome(decision: Decision, gate_no: int = 2, round: int = 1, **terms: object) -> GateOutcome:
    return GateOutcome(
        gate_no=gate_no,
        round=round,
        decision=GateDecisionInput(decided_by=PM, decision=decision, **terms),  # type: ignore[arg-type]
        recommendation=Recommendation(decision=Decision.GO, weighted_score=4.0, failed_must_meet=[], reviews=3),
        reviews=3,
    )


def stage_two(**fields: object) -> ProjectState:
    return ProjectState.model_validate({"trl": 3, "stage_index": 1, "phase": Phase.GATE, **fields})


def apply(state: ProjectState, out: GateOutcome, last_stage: bool = False) -> tuple[ProjectState, NextStep]:
    effects = apply_decision(state, out, exit_trl=5, last_stage=last_stage, now=NOW, clock=CLOCK)
    return effects.state, effects.next


def test_a_go_raises_the_trl_and_moves_to_the_next_stage() -> None:
    state, step = apply(stage_two(gate_round=3), outcome(Decision.GO))
    assert step == NextStep.NEXT_STAGE
    assert (state.trl, state.stage_index, state.gate.round) == (5, 2, 1)
    assert state.gate.conditions is None and state.stop_reason is None


def test_the_last_stages_go_hands_off_with_its_brief() -> None:
    brief = HandoffBrief(results_summary="A working prototype")
    state, step = apply(stage_two(), outcome(Decision.GO, handoff=brief), last_stage=True)
    assert step == NextStep.HAND_OFF
    assert state.phase == Phase.HANDOFF and state.handoffs.brief == brief and state.stage_index == 1


def test_a_conditional_go_sets_conditions_due_in_programme_days() -> None:
    out = outcome(Decision.CONDITIONAL_GO, conditions=["Replicate the result"], conditions_due_days=100)
    state, step = apply(stage_two(), out)
    assert step == NextStep.NEXT_STAGE
    assert state.gate.conditions == Conditions(
        gate_no=2, items=["Replicate the result"], due_at=NOW + timedelta(minutes=100)
    )


def test_a_kill_stops_with_its_reason_and_lessons() -> None:
    out = outcome(Decision.KILL, justification="Overtaken", lessons="Check roadmaps")
    state, step = apply(stage_two(), out)
    assert step == NextStep.STOP
    assert state.stop_reason == f"Killed at gate 2 by {PM}: Overtaken" and state.lessons == "Check roadmaps"
    assert state.trl == 3


def test_a_hold_changes_nothing_until_it_is_waited_out() -> None:
    before = stage_two(gate_round=1)
    effects = apply_decision(
        before, outcome(Decision.HOLD, justification="Budget"), exit_trl=5, last_stage=False, now=NOW, clock=CLOCK
    )
    assert effects.next == NextStep.HOLD and effects.hold_reason == "Hold at gate 2: Budget"
    assert effects.state == before
    assert held_round_over(effects.state).gate.round == 2


def test_recycles_count_per_stage_and_extend_it_as_one_more_tranche() -> None:
    before = stage_two(recycles={1: 1}, paused_seconds=42.0, gate_round=2)
    out = outcome(Decision.RECYCLE, recycle_days=30, recycle_budget=1_000_000)
    effects = apply_decision(before, out, exit_trl=5, last_stage=False, now=NOW, clock=CLOCK)
    assert effects.next == NextStep.RECYCLE and effects.recycle_part == 2
    assert effects.state.gate.recycles == {1: 2} and before.gate.recycles == {1: 1}  # the input is not changed
    after = recycled(effects.state, out, part=2, tranches=3, now=NOW)
    assert after.gate.extension is not None
    assert (after.gate.extension.tranche_no, after.gate.extension.days, after.gate.extension.budget) == (
        5,
        30,
        1_000_000,
    )
    assert (after.phase, after.calendar.paused_seconds, after.gate.round) == (Phase.STAGE, 0.0, 3)


def test_a_carried_out_decision_is_listed_by_gate_and_round() -> None:
    state = carried_out(stage_two(applied=["1/1"]), outcome(Decision.GO, gate_no=2, round=3))
    assert state.gate.applied == ["1/1", "2/3"]


@pytest.mark.parametrize("decision", [Decision.GO, Decision.KILL, Decision.RECYCLE])
def test_unchanged_parts_are_shared_so_waiters_see_them_change(decision: Decision) -> None:
    conditions = Conditions(gate_no=1, items=["x y z"], due_at=NOW)
    before = stage_two(conditions=conditions)
    state, _ = apply(before, outcome(decision, recycle_days=10, recycle_budget=0))
    assert state.gate.conditions is conditions
