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
