"""The gate event union: one model per kind, parsed by its `kind`, stored with the payloads the
gate event log has always held (datetimes as isoformat text, a decision without its command)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from domain.command import Command
from domain.gate_review import (
    DueDateSet,
    GateDecisionInput,
    GateEvent,
    GateEventKind,
    InvitationAnswered,
    MemberStatus,
    ReviewStored,
    RoundClosed,
)
from domain.project import Decision, Recommendation
from tests.support import proposal, review_for

AT = datetime(2027, 4, 1, 9, 30, tzinfo=UTC)
EVENTS: TypeAdapter[GateEvent] = TypeAdapter(GateEvent)


def stamp(**fields: Any) -> dict[str, Any]:
    return {"key": "k-1", "project_id": "KP-1", "gate_no": 1, "round": 1, "actor": "pm.sato", "at": AT, **fields}


def test_an_event_parses_to_the_model_its_kind_names() -> None:
    sent = InvitationAnswered(**stamp(), reviewer="rev.ito", status=MemberStatus.RECUSED, statement="my former lab")
    received = EVENTS.validate_json(EVENTS.dump_json(sent))
    assert type(received) is InvitationAnswered and received == sent


def test_a_model_of_two_kinds_keeps_the_one_it_was_sent_with() -> None:
    sent = DueDateSet(**stamp(), kind=GateEventKind.REVIEW_OPENED, due_at=AT)
    received = EVENTS.validate_python(sent.model_dump())
    assert type(received) is DueDateSet and received.kind == GateEventKind.REVIEW_OPENED


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match any of the expected tags"):
        EVENTS.validate_python({**stamp(), "kind": "cancelled", "payload": {}})


def test_a_moved_deadline_is_stored_as_isoformat_text() -> None:
    due = datetime(2027, 6, 1, tzinfo=UTC)
    event = DueDateSet(**stamp(), kind=GateEventKind.DEADLINE, due_at=due)
    assert event.payload() == {"due_at": due.isoformat()}


def test_a_review_is_stored_flat_with_the_recommendation() -> None:
    review = review_for(proposal(), 1, "rev.ito")
    rec = Recommendation(decision=Decision.GO, weighted_score=4.0, failed_must_meet=[], reviews=1)
    event = ReviewStored(**stamp(), kind=GateEventKind.AMENDED, review=review, recommendation=rec)
    assert event.payload() == {**review.model_dump(mode="json"), "recommendation": rec.model_dump(mode="json")}


def test_a_closed_round_stores_the_decision_without_its_command() -> None:
    command = Command(key="wf/update-1", actor="pm.sato", action="decide_gate", target="project:KP-1")
    decision = GateDecisionInput(decided_by="pm.sato", decision=Decision.GO, command=command)
    rec = Recommendation(decision=Decision.GO, weighted_score=4.0, failed_must_meet=[], reviews=3)
    event = RoundClosed(**stamp(command=command), recommendation=rec, decision=decision)
    assert event.payload() == {
        "recommendation": rec.model_dump(mode="json"),
        "decision": decision.model_dump(mode="json", exclude={"command"}),
    }
    assert "command" not in event.payload()["decision"]
