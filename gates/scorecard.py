"""Checks a review against its gate, and turns the panel's reviews into a recommendation."""

from __future__ import annotations

from collections.abc import Iterable

from domain.project import Decision, Recommendation, ReviewSubmission
from gates.definitions import SCORE_MAX, SCORE_MIN, GateDefinition


def review_errors(gate: GateDefinition, review: ReviewSubmission) -> list[str]:
    """Everything wrong with `review` for `gate`, in words a reviewer can act on."""
    errors: list[str] = []
    expected_must = {c.key for c in gate.must_meet}
    expected_should = {c.key for c in gate.should_meet}
    if missing := sorted(expected_must - review.must_meet.keys()):
        errors.append(f"must-meet criteria not answered: {', '.join(missing)}")
    if unknown := sorted(review.must_meet.keys() - expected_must):
        errors.append(f"unknown must-meet criteria: {', '.join(unknown)}")
    if missing := sorted(expected_should - review.scores.keys()):
        errors.append(f"should-meet criteria not scored: {', '.join(missing)}")
    if unknown := sorted(review.scores.keys() - expected_should):
        errors.append(f"unknown should-meet criteria: {', '.join(unknown)}")
    for key, score in sorted(review.scores.items()):
        if not SCORE_MIN <= score <= SCORE_MAX:
            errors.append(f"score for {key} is {score}, outside {SCORE_MIN}..{SCORE_MAX}")
    return errors


def weighted_score(gate: GateDefinition, review: ReviewSubmission) -> float:
    total_weight = sum(c.weight for c in gate.should_meet)
    return sum(c.weight * review.scores[c.key] for c in gate.should_meet) / total_weight


def recommend(gate: GateDefinition, reviews: Iterable[ReviewSubmission]) -> Recommendation:
    """The panel's recommendation.

    A must-meet criterion holds only when a strict majority of the panel says it is met; any failed
    must-meet means Kill, whatever the scores (a failed must-meet can never yield Go).
    """
    panel = list(reviews)
    if not panel:
        raise ValueError("a recommendation needs at least one review")
    failed = [c.key for c in gate.must_meet if sum(1 for r in panel if r.must_meet.get(c.key, False)) * 2 <= len(panel)]
    score = round(sum(weighted_score(gate, r) for r in panel) / len(panel), 3)
    decision = Decision.GO if not failed and score >= gate.go_threshold else Decision.KILL
    return Recommendation(decision=decision, weighted_score=score, failed_must_meet=failed, reviews=len(panel))
