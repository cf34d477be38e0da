"""User roles and the ministries the programme knows."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    PM = "pm"
    REVIEWER = "reviewer"
    FINANCE = "finance"
    MINISTRY = "ministry"
    OPS = "ops"
    PERFORMER = "performer"
    ADMIN = "admin"


GROUP_PREFIX = "group:"  # usernames cannot hold ':', so a group address never names a person


def group(role: Role) -> str:
    """The notification address of everyone in a role (e.g. finance for four-eyes approvals)."""
    return f"{GROUP_PREFIX}{role.value}"


def group_role(recipient: str) -> Role | None:
    """The role a group address names, or None for a person's username."""
    if not recipient.startswith(GROUP_PREFIX):
        return None
    try:
        return Role(recipient.removeprefix(GROUP_PREFIX))
    except ValueError:
        return None


class FundingMinistry(StrEnum):
    MEXT = "MEXT"
    METI = "METI"


# Public-use ministries (公的利用) seeded into the registry; a programme may add more.
PUBLIC_USE_MINISTRIES: dict[str, str] = {
    "MOD": "Ministry of Defense",
    "MLIT": "Ministry of Land, Infrastructure, Transport and Tourism",
    "NPA": "National Police Agency",
    "JCG": "Japan Coast Guard",
    "MIC": "Ministry of Internal Affairs and Communications",
    "MHLW": "Ministry of Health, Labour and Welfare",
    "MEXT": "Ministry of Education, Culture, Sports, Science and Technology",
    "METI": "Ministry of Economy, Trade and Industry",
}
