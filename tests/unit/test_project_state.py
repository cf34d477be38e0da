"""domain/project.py ProjectState: sub-models, and the flat shape older runs continued as new with."""

from __future__ import annotations

from datetime import UTC, date, datetime

from domain.project import FLAT_FIELDS, Phase, ProjectState, ProjectStatus

# The state a v4 run carried into its next run (tests/histories/project-HIST-v4-full-run1.json).
V4_CONTINUED_AS_NEW = {
    "status": "active",
    "phase": "stage",
    "stage_index": 1,
    "trl": 3,
    "stage_started_at": "2026-11-25T20:50:54.579466Z",
    "tranches_paid": [],
    "gate": None,
    "handoffs": {},
    "stop_reason": None,
    "stop_result": None,
    "gate_round": 1,
    "gate_workflow_id": None,
    "applied": ["1/1"],
    "recycles": {},
    "extension": None,
    "hold": None,
    "conditions": None,
    "paused_seconds": 0.0,
    "calendar_origin": "2026-11-25T20:50:52.636022Z",
    "calendar_start": "2026-11-26",
    "reports": {},
    "approvals": {},
    "report_reminders": {},
    "waiting_for_funds": False,
}


def test_the_flat_state_of_an_older_run_is_read_into_the_sub_models() -> None:
    state = ProjectState.model_validate(V4_CONTINUED_AS_NEW)
    assert (state.status, state.phase, state.stage_index, state.trl) == (ProjectStatus.ACTIVE, Phase.STAGE, 1, 3)
    assert state.gate.applied == ["1/1"] and state.gate.round == 1
    assert state.calendar.origin == datetime(2026, 11, 25, 20, 50, 52, 636022, tzinfo=UTC)
    assert state.calendar.start == date(2026, 11, 26)
    assert state.calendar.stage_started_at == datetime(2026, 11, 25, 20, 50, 54, 579466, tzinfo=UTC)
    assert state.money.tranches_paid == [] and state.handoffs.runs == {}


def test_every_flat_field_lands_in_its_sub_model() -> None:
    flat = {
        "trl": 5,
        "tranches_paid": [1, 2],
        "reports": {"2026": {"status": "accepted", "submitted_by": "perf.aoki"}},
        "waiting_for_funds": True,
        "paused_seconds": 12.5,
        "gate_round": 3,
        "gate_workflow_id": "project-X-gate-2-r3",
        "recycles": {"1": 2},
        "conditions": {"gate_no": 1, "items": ["x y z"], "due_at": "2027-01-01T00:00:00Z"},
        "handoff_runs": {},
        "public_use_achieved": True,
        "handoffs_concluded": True,
        # the first design's gate and hand-offs: dropped
        "gate": {"gate_no": 1, "opened_at": "2026-11-25T20:50:52Z"},
        "handoffs": {"MOD": "pending"},
    }
    state = ProjectState.model_validate(flat)
    assert state.money.tranches_paid == [1, 2] and state.money.reports[2026].status == "accepted"
    assert state.money.waiting_for_funds and state.calendar.paused_seconds == 12.5
    assert (state.gate.round, state.gate.workflow_id, state.gate.recycles) == (3, "project-X-gate-2-r3", {1: 2})
    assert state.gate.conditions is not None and state.gate.conditions.items == ["x y z"]
    assert state.handoffs.public_use_achieved is True and state.handoffs.concluded is True


def test_the_new_shape_round_trips_unchanged() -> None:
    state = ProjectState.model_validate(V4_CONTINUED_AS_NEW)
    dumped = state.model_dump(mode="json")
    assert not FLAT_FIELDS.keys() & dumped.keys()
    assert ProjectState.model_validate(dumped) == state
