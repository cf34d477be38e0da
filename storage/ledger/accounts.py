"""The ledger's accounts and business keys, as values instead of string prefixes.

An account is stored as text ("endowment", "allocation:<ministry>", "reservation:<project>",
"paid:<project>"); `Account` writes and reads that text so no other module builds or splits it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class AccountKind(StrEnum):
    ENDOWMENT = "endowment"  # the fund's source; negative by the fund's size
    ALLOCATION = "allocation"  # a ministry's money not yet reserved (available)
    RESERVATION = "reservation"  # a project's money reserved and not yet paid
    PAID = "paid"  # money paid to a project's performer

    @property
    def committed(self) -> bool:
        """Money a ministry has committed to a fiscal year (counted against its ceiling)."""
        return self in (AccountKind.RESERVATION, AccountKind.PAID)


class AccountError(ValueError):
    pass


@dataclass(frozen=True, order=True)
class Account:
    kind: AccountKind
    owner: str | None = None  # the ministry (allocation) or project (reservation, paid)

    def __post_init__(self) -> None:
        if (self.kind == AccountKind.ENDOWMENT) != (self.owner is None) or self.owner == "":
            raise AccountError(f"a {self.kind} account {'has no' if self.owner is None else 'needs an'} owner")

    def __str__(self) -> str:
        return self.kind.value if self.owner is None else f"{self.kind.value}:{self.owner}"

    @classmethod
    def parse(cls, text: str) -> Account:
        kind, _, owner = text.partition(":")
        try:
            return cls(AccountKind(kind), owner or None)
        except ValueError as err:
            raise AccountError(f"{text!r} is no ledger account") from err

    @classmethod
    def allocation(cls, ministry: str) -> Account:
        return cls(AccountKind.ALLOCATION, ministry)

    @classmethod
    def reservation(cls, project_id: str) -> Account:
        return cls(AccountKind.RESERVATION, project_id)

    @classmethod
    def paid(cls, project_id: str) -> Account:
        return cls(AccountKind.PAID, project_id)


ENDOWMENT_ACCOUNT = Account(AccountKind.ENDOWMENT)
ENDOWMENT = str(ENDOWMENT_ACCOUNT)


# The stored names, for callers that query balances by text.
def allocation_account(ministry: str) -> str:
    return str(Account.allocation(ministry))


def reservation_account(project_id: str) -> str:
    return str(Account.reservation(project_id))


def paid_account(project_id: str) -> str:
    return str(Account.paid(project_id))


UNSCHEDULED = 0  # the tranche number of a reservation without a tranche schedule


def _part_suffix(part: int) -> str:
    """Part 0 is the stage's own budget (keys as first designed); later parts are recycles."""
    return "" if part == 0 else f":p{part}"


def endow_key(programme_code: str, ministry: str) -> str:
    return f"endow:{programme_code}:{ministry}"


def reserve_key(project_id: str, stage_no: int, part: int = 0) -> str:
    return f"reserve:{project_id}:{stage_no}{_part_suffix(part)}"


def pay_key(project_id: str, stage_no: int, tranche_no: int) -> str:
    return f"pay:{project_id}:{stage_no}:{tranche_no}"


def release_key(project_id: str, stage_no: int, part: int) -> str:
    return f"release:{project_id}:{stage_no}{_part_suffix(part)}"


def reverse_key(business_key: str) -> str:
    return f"reverse:{business_key}"
