"""What a programme manager's gate decision must satisfy (pure; the workflow validator calls it)."""

from __future__ import annotations

from domain.gate_review import GateDecisionInput
from domain.policy import GatePolicy
from domain.project import Decision, Recommendation


def decision_errors(
    decision: GateDecisionInput,
    recommendation: Recommendation,
    policy: GatePolicy,
    stage_budget: int,
    recycles_so_far: int,
) -> list[str]:
    errors: list[str] = []
    d = decision.decision
    if d in (Decision.GO, Decision.CONDITIONAL_GO) and recommendation.failed_must_meet:
        errors.append(f"must-meet criteria failed ({', '.join(recommendation.failed_must_meet)}): Go is not allowed")
    against = (d in (Decision.GO, Decision.CONDITIONAL_GO) and recommendation.decision == Decision.KILL) or (
        d == Decision.KILL and recommendation.decision == Decision.GO
    )
    if against and not decision.justification.strip():
        errors.append(
            f"deciding {d.value} against the panel's recommendation ({recommendation.decision.value}) "
            "needs a written justification"
        )
    if d == Decision.CONDITIONAL_GO:
        if not decision.conditions:
            errors.append("a conditional go needs at least one named condition")
        if decision.conditions_due_days is None:
            errors.append("a conditional go needs conditions_due_days")
    elif decision.conditions or decision.conditions_due_days is not None:
        errors.append("conditions belong only to a conditional go")
    if d == Decision.RECYCLE:
        if recycles_so_far >= policy.max_recycles:
            errors.append(
                f"this stage was recycled {recycles_so_far} times already; the maximum is {policy.max_recycles}"
            )
        if decision.recycle_days is None:
            errors.append("a recycle needs recycle_days")
        elif decision.recycle_days > policy.max_recycle_days:
            errors.append(f"recycle_days {decision.recycle_days} exceeds the limit of {policy.max_recycle_days}")
        limit = stage_budget * policy.max_recycle_budget_percent // 100
        if decision.recycle_budget is None:
            errors.append("a recycle needs recycle_budget (0 for time only)")
        elif decision.recycle_budget > limit:
            errors.append(f"recycle_budget {decision.recycle_budget} exceeds the limit of {limit} yen")
    elif decision.recycle_days is not None or decision.recycle_budget is not None:
        errors.append("recycle_days and recycle_budget belong only to a recycle")
    return errors
