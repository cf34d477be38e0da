"""A gate decision applied to the project's state: plain functions that return the new state and
what the workflow must do next (stop, hand off, reserve the next stage, hold, recycle).

Pure and sandbox-safe: the project workflow only runs the effects (tests/unit/test_gate_decision.py
covers every decision without a server). Each function returns a copy; nested objects the
decision does not change are shared, so a waiter holding one (the conditions watcher) still sees
it change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from domain.gate_review import GateOutcome
from domain.programme_clock import ProgrammeClock
from domain.project import Conditions, Decision, Phase, ProjectState, StageExtension


class NextStep(StrEnum):
    STOP = "stop"  # a Kill: the clean stop runs
    HAND_OFF = "hand_off"  # the last stage's Go: the hand-offs start
    NEXT_STAGE = "next_stage"  # a Go: reserve the next stage's budget, then enter it
    HOLD = "hold"  # enter a hold and wait it out; the gate's next round follows
    RECYCLE = "recycle"  # reserve the recycle's budget (if any), then the stage runs on


@dataclass(frozen=True)
class DecisionEffects:
    state: ProjectState
    next: NextStep
    hold_reason: str = ""
    recycle_part: int = 0  # which recycle of this stage (its reservation's part)


def _because(text: str) -> str:
    return f": {text}" if text else ""


def apply_decision(
    state: ProjectState, outcome: GateOutcome, *, exit_trl: int, last_stage: bool, now: datetime, clock: ProgrammeClock
) -> DecisionEffects:
    """The state a decision leaves before its effects run, and which effect comes next."""
    d = outcome.decision
    if d.decision == Decision.KILL:
        reason = f"Killed at gate {outcome.gate_no} by {d.decided_by}" + _because(d.justification)
        return DecisionEffects(state.model_copy(update={"stop_reason": reason, "lessons": d.lessons}), NextStep.STOP)
    if d.decision in (Decision.GO, Decision.CONDITIONAL_GO):
        gate: dict[str, object] = {"round": 1}
        if d.decision == Decision.CONDITIONAL_GO:
            assert d.conditions_due_days is not None
            gate["conditions"] = Conditions(
                gate_no=outcome.gate_no, items=list(d.conditions), due_at=now + clock.days(d.conditions_due_days)
            )
        update: dict[str, object] = {"trl": exit_trl, "gate": state.gate.model_copy(update=gate)}
        if last_stage:
            handoffs = state.handoffs.model_copy(update={"brief": d.handoff})
            update |= {"handoffs": handoffs, "phase": Phase.HANDOFF}
            return DecisionEffects(state.model_copy(update=update), NextStep.HAND_OFF)
        update["stage_index"] = state.stage_index + 1
        return DecisionEffects(state.model_copy(update=update), NextStep.NEXT_STAGE)
    if d.decision == Decision.HOLD:
        reason = f"Hold at gate {outcome.gate_no}" + _because(d.justification)
        return DecisionEffects(state, NextStep.HOLD, hold_reason=reason)
    assert d.decision == Decision.RECYCLE
    part = state.gate.recycles.get(state.stage_index, 0) + 1
    gate_after = state.gate.model_copy(update={"recycles": {**state.gate.recycles, state.stage_index: part}})
    return DecisionEffects(state.model_copy(update={"gate": gate_after}), NextStep.RECYCLE, recycle_part=part)


def held_round_over(state: ProjectState) -> ProjectState:
    """A Hold waited out (or stopped): the gate's next round follows."""
    return _with_gate(state, round=state.gate.round + 1)


def recycled(state: ProjectState, outcome: GateOutcome, *, part: int, tranches: int, now: datetime) -> ProjectState:
    """A recycle funded: the stage runs on from `now` for its days, its budget paid as one more
    tranche (numbered after the stage's `tranches`), hold time counted afresh."""
    d = outcome.decision
    assert d.recycle_days is not None and d.recycle_budget is not None
    extension = StageExtension(
        part=part, started_at=now, days=d.recycle_days, budget=d.recycle_budget, tranche_no=tranches + part
    )
    calendar = state.calendar.model_copy(update={"paused_seconds": 0.0})
    after = state.model_copy(update={"phase": Phase.STAGE, "calendar": calendar})
    return _with_gate(after, extension=extension, round=state.gate.round + 1)


def carried_out(state: ProjectState, outcome: GateOutcome) -> ProjectState:
    """The decision is carried out: the API and `decision_carried_out` look for its gate/round."""
    return _with_gate(state, applied=[*state.gate.applied, f"{outcome.gate_no}/{outcome.round}"])


def _with_gate(state: ProjectState, **changes: object) -> ProjectState:
    return state.model_copy(update={"gate": state.gate.model_copy(update=changes)})
