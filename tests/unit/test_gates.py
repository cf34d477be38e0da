"""gates/: criteria per gate, review checks, and the panel's recommendation."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from domain.project import Decision, ReviewSubmission
from gates.definitions import gate_for_stage
from gates.scorecard import recommend, review_errors, weighted_score
from tests.support import proposal

P = proposal()
GATE = gate_for_stage(2, P.stage_plan[1])


def review(reviewer: str = "r1", score: int = 4, met: bool = True, **scores: int) -> ReviewSubmission:
    return ReviewSubmission(
        gate_no=2,
        reviewer=reviewer,
        must_meet={c.key: met for c in GATE.must_meet},
        scores={c.key: scores.get(c.key, score) for c in GATE.should_meet},
    )


def test_gate_asks_for_the_nasa_exit_criterion_of_its_trl() -> None:
    assert GATE.exit_trl == 5
    assert "TRL 5" in GATE.question and "relevant environment" in GATE.question
    assert "scaling requirements" in GATE.must_meet[0].text


def test_a_complete_review_has_no_errors() -> None:
    assert review_errors(GATE, review()) == []


def test_review_errors_name_what_is_wrong() -> None:
    bad = review(technical_merit=7, team=0)
    bad.must_meet.pop("protection_measures")
    bad.scores["charisma"] = 3
    errors = review_errors(GATE, bad)
    assert "must-meet criteria not answered: protection_measures" in errors
    assert "unknown should-meet criteria: charisma" in errors
    assert "score for technical_merit is 7, outside 1..5" in errors
    assert "score for team is 0, outside 1..5" in errors


def test_weighted_score_uses_weights() -> None:
    r = review(score=1, technical_merit=5)  # weight 3 of 10
    assert weighted_score(GATE, r) == (3 * 5 + 7 * 1) / 10


def test_recommendation_go_when_scores_pass_and_must_meet_holds() -> None:
    rec = recommend(GATE, [review("a"), review("b", score=3), review("c", score=2)])
    assert rec.decision == Decision.GO and rec.weighted_score == 3.0 and rec.failed_must_meet == []


def test_recommendation_kill_below_threshold() -> None:
    assert recommend(GATE, [review("a", score=2), review("b", score=3)]).decision == Decision.KILL


def test_must_meet_needs_a_strict_majority() -> None:
    rec = recommend(GATE, [review("a", score=5), review("b", score=5, met=False)])
    assert rec.decision == Decision.KILL
    assert rec.failed_must_meet == ["trl_exit_evidence", "protection_measures"]
    assert recommend(GATE, [review("a"), review("b"), review("c", met=False)]).decision == Decision.GO


@given(
    st.lists(st.tuples(st.integers(1, 5), st.booleans()), min_size=1, max_size=7),
)
def test_a_failed_must_meet_never_yields_go(panel: list[tuple[int, bool]]) -> None:
    reviews = [review(f"r{i}", score=s, met=m) for i, (s, m) in enumerate(panel)]
    rec = recommend(GATE, reviews)
    if rec.failed_must_meet:
        assert rec.decision == Decision.KILL
    met_votes = sum(m for _, m in panel)
    assert bool(rec.failed_must_meet) == (met_votes * 2 <= len(panel))
