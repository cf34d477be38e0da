"""Protection of closed work (保全措置): labels, clearances and the one need-to-know rule.

A label is (level, compartments). A subject may read an object when its clearance level dominates
the label's, it holds every compartment of the label, and it has an explicit grant for that project.
Open projects carry no label; the role rules alone decide for them. Pure code: the API, the
activities (who receives a closed hand-off package) and the codec endpoint all call `decide`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, PlainSerializer, WithJsonSchema


class Level(IntEnum):
    NONE = 0
    CONFIDENTIAL = 1  # 秘
    SECRET = 2  # 極秘
    TOP_SECRET = 3  # 機密


Compartment = Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9-]{1,31}$")]


def _level(value: object) -> object:
    """Levels by name ("SECRET") or by number (2), and nothing else: `false` or "2" is no level
    (a clearance decides access, so nothing is coerced into one)."""
    if isinstance(value, str):
        try:
            return Level[value]
        except KeyError:
            raise ValueError(f"unknown level {value!r}; one of {', '.join(Level.__members__)}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"a level is a name ({', '.join(Level.__members__)}) or a number 0-3")
    return value


LevelField = Annotated[
    Level,
    BeforeValidator(_level),
    PlainSerializer(lambda v: v.name, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "enum": list(Level.__members__)},
                {"type": "integer", "enum": list(map(int, Level))},
            ]
        },
        mode="validation",
    ),
]


class SecurityLabel(BaseModel):
    level: LevelField = Level.CONFIDENTIAL
    compartments: list[Compartment] = Field(default_factory=list, max_length=16)


@dataclass(frozen=True)
class AccessDecision:
    allowed: bool
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def decide(
    *,
    closed: bool,
    label_level: int,
    label_compartments: Iterable[str],
    clearance_level: int,
    compartments: Iterable[str],
    granted: bool,
    role_allows: bool,
) -> AccessDecision:
    """May this subject read this project? Roles first (function level), then, for closed work,
    dominance and need-to-know (data level). The reason names what is missing."""
    if not role_allows:
        return AccessDecision(False, "no role gives access to this project")
    if not closed:
        return AccessDecision(True, "open project")
    if clearance_level < label_level:
        return AccessDecision(
            False, f"clearance {Level(clearance_level).name} is below the label's {Level(label_level).name}"
        )
    missing = sorted(set(label_compartments) - set(compartments))
    if missing:
        return AccessDecision(False, f"compartments missing: {', '.join(missing)}")
    if not granted:
        return AccessDecision(False, "no need-to-know grant for this project")
    return AccessDecision(True, "cleared and granted")
