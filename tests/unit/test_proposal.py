"""domain/proposal.py: a proposal is fully validated before anything starts."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.proposal import Proposal, default_stage_plan, split_evenly
from tests.support import proposal


def test_default_plan_is_the_four_domain_stages() -> None:
    plan = proposal().stage_plan
    assert [(s.name, s.trl_in, s.trl_out) for s in plan] == [
        ("Basic research", 1, 3),
        ("Applied research", 3, 5),
        ("Demonstration", 5, 7),
        ("Social implementation", 7, 9),
    ]
    assert sum(s.duration_days for s in plan) == 3650  # ten years
    assert [s.budget for s in plan] == [1_000_000_000, 2_000_000_000, 3_000_000_000, 4_000_000_000]


def test_a_mid_trl_consortium_enters_at_demonstration() -> None:
    plan = proposal(start_trl=5, target_trl=7).stage_plan
    assert [(s.name, s.trl_in, s.trl_out) for s in plan] == [("Demonstration", 5, 7)]
    assert plan[0].budget == 10_000_000_000


@given(
    start=st.integers(1, 8),
    span=st.integers(1, 8),
    total=st.integers(1_000, 10**12),
)
def test_default_plan_is_contiguous_and_sums_exactly(start: int, span: int, total: int) -> None:
    target = min(9, start + span)
    plan = default_stage_plan(start, target, total)
    assert plan[0].trl_in == start and plan[-1].trl_out == target
    assert sum(s.budget for s in plan) == total
    assert all(sum(t.amount for t in s.tranches) == s.budget for s in plan)
    assert all(a.trl_out == b.trl_in for a, b in itertools.pairwise(plan))


@given(st.integers(0, 10**13), st.integers(1, 12))
def test_split_evenly_is_exact(total: int, parts: int) -> None:
    amounts = split_evenly(total, parts)
    assert sum(amounts) == total and max(amounts) - min(amounts) <= 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"start_trl": 5, "target_trl": 5}, "start_trl 5 must be below target_trl 5"),
        ({"start_trl": 0}, "greater than or equal to 1"),
        ({"target_trl": 10}, "less than or equal to 9"),
        ({"total_budget": 1.5}, "valid integer"),
        ({"total_budget": -1}, "greater than 0"),
        ({"reviewers": ["rev.ito", "rev.ito"]}, "reviewers must be distinct"),
        ({"reviewers": ["pm.sato"]}, "cannot review their own project"),
        ({"reviewers": []}, "at least 1 item"),
        ({"funding_ministry": "MOF"}, "'MEXT' or 'METI'"),
        ({"project_id": "x"}, "should match pattern"),
        (
            {
                "start_trl": 3,
                "target_trl": 5,
                "stages": [
                    {
                        "name": "A",
                        "trl_in": 3,
                        "trl_out": 5,
                        "duration_days": 365,
                        "budget": 100,
                        "tranches": [{"offset_days": 0, "amount": 60}, {"offset_days": 100, "amount": 30}],
                    }
                ],
                "total_budget": 100,
            },
            "tranches sum to 90 yen but the stage budget is 100 yen",
        ),
        (
            {
                "start_trl": 3,
                "target_trl": 6,
                "stages": [
                    {
                        "name": "A",
                        "trl_in": 3,
                        "trl_out": 4,
                        "duration_days": 365,
                        "budget": 50,
                        "tranches": [{"offset_days": 0, "amount": 50}],
                    },
                    {
                        "name": "B",
                        "trl_in": 5,
                        "trl_out": 6,
                        "duration_days": 365,
                        "budget": 50,
                        "tranches": [{"offset_days": 0, "amount": 50}],
                    },
                ],
                "total_budget": 100,
            },
            "stage 'B' starts at TRL 5 but 'A' ends at 4",
        ),
        (
            {
                "start_trl": 3,
                "target_trl": 4,
                "stages": [
                    {
                        "name": "A",
                        "trl_in": 3,
                        "trl_out": 4,
                        "duration_days": 365,
                        "budget": 50,
                        "tranches": [{"offset_days": 400, "amount": 50}],
                    },
                ],
                "total_budget": 50,
            },
            "falls after the stage ends",
        ),
        (
            {
                "start_trl": 3,
                "target_trl": 4,
                "total_budget": 99,
                "stages": [
                    {
                        "name": "A",
                        "trl_in": 3,
                        "trl_out": 4,
                        "duration_days": 365,
                        "budget": 50,
                        "tranches": [{"offset_days": 0, "amount": 50}],
                    }
                ],
            },
            "stage budgets sum to 50 yen but total_budget is 99 yen",
        ),
    ],
)
def test_bad_proposals_are_refused_with_a_reason(overrides: dict[str, Any], message: str) -> None:
    data = proposal().model_dump(mode="json", exclude={"stages"})
    data.update(overrides)
    with pytest.raises(ValidationError) as err:
        Proposal.model_validate(data)
    assert message in str(err.value)
