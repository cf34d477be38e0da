"""Technology Readiness Levels in the official wording, and the default stage plan."""

from __future__ import annotations

from typing import NamedTuple

NASA_TRL: dict[int, str] = {
    1: "Basic principles observed and reported",
    2: "Technology concept and/or application formulated",
    3: "Analytical and experimental critical function and/or characteristic proof-of-concept",
    4: "Component and/or breadboard validation in laboratory environment",
    5: "Component and/or breadboard validation in relevant environment",
    6: "System/sub-system model or prototype demonstration in a relevant environment",
    7: "System prototype demonstration in an operational environment",
    8: 'Actual system completed and "flight qualified" through test and demonstration',
    9: 'Actual system "flight proven" through successful mission operations',
}

EU_TRL: dict[int, str] = {
    1: "basic principles observed",
    2: "technology concept formulated",
    3: "experimental proof of concept",
    4: "technology validated in lab",
    5: "technology validated in relevant environment",
    6: "technology demonstrated in relevant environment",
    7: "system prototype demonstration in operational environment",
    8: "system complete and qualified",
    9: "actual system proven in operational environment",
}

NASA_EXIT_CRITERIA: dict[int, str] = {
    1: "Peer-reviewed publication of research underlying the proposed concept/application",
    2: "Documented description of the application/concept that addresses feasibility and benefit",
    3: "Documented analytical/experimental results validating predictions of key parameters",
    4: "Documented test performance demonstrating agreement with analytical predictions",
    5: "Documented test performance demonstrating agreement with analytical predictions; "
    "documented definition of scaling requirements",
    6: "Documented test performance demonstrating agreement with analytical predictions",
    7: "Documented test performance demonstrating agreement with analytical predictions",
    8: "Documented test performance verifying analytical predictions",
    9: "Documented mission operational results",
}


class DefaultStage(NamedTuple):
    name: str
    trl_in: int
    trl_out: int
    years: int
    gate_question: str
    budget_share: int  # percent of the project's total budget


DEFAULT_STAGES: tuple[DefaultStage, ...] = (
    DefaultStage("Basic research", 1, 3, 3, "Proof of concept reached?", 10),
    DefaultStage("Applied research", 3, 5, 3, "Validated in relevant environment?", 20),
    DefaultStage("Demonstration", 5, 7, 2, "Prototype proven in operational environment?", 30),
    DefaultStage("Social implementation", 7, 9, 2, "Qualified and ready for public use?", 40),
)

MIN_TRL = 1
MAX_TRL = 9
