"""The fund's double-entry ledger (integer yen; every transaction's entries sum to zero).

  accounts.py    the accounts (endowment, allocation:<ministry>, reservation:<project>,
                 paid:<project>) and the business keys
  posting.py     the posting engine: a balanced transaction, its entries, the running balances
  ceilings.py    fiscal-year ceilings with carry-over; set_ceiling
  schedules.py   a reservation's plan by tranche and fiscal year
  commands.py    endow, reserve, pay_tranche, release_open, reverse
  reports.py     fund_summary, statement, entry_rows (the CSV), entry_page (its JSON pages)
  invariants.py  the full scan of every rule (fund-check and the scheduled check)

The names below are the package's public face; import from `storage.ledger`.
"""

from storage.ledger.accounts import (
    ENDOWMENT,
    ENDOWMENT_ACCOUNT,
    UNSCHEDULED,
    Account,
    AccountError,
    AccountKind,
    allocation_account,
    paid_account,
    pay_key,
    reservation_account,
    reserve_key,
)
from storage.ledger.ceilings import set_ceiling
from storage.ledger.commands import (
    ReservationView,
    ReversalView,
    TrancheView,
    endow,
    pay_tranche,
    release_open,
    reserve,
    reverse,
)
from storage.ledger.invariants import invariant_violations
from storage.ledger.posting import (
    IdempotencyConflict,
    InsufficientFunds,
    LedgerError,
    Leg,
    NoOpenReservation,
    NotReversible,
    balance,
)
from storage.ledger.reports import (
    CSV_COLUMNS,
    MinistryFunds,
    StatementLine,
    entry_page,
    entry_rows,
    fund_summary,
    paid_by_project,
    released_by_project,
    statement,
)
from storage.ledger.schedules import ScheduledAmount

# Kept importable from here for callers written against the single module (api/routes/fund.py).
from storage.models import LedgerTransaction

__all__ = [
    "CSV_COLUMNS",
    "ENDOWMENT",
    "ENDOWMENT_ACCOUNT",
    "UNSCHEDULED",
    "Account",
    "AccountError",
    "AccountKind",
    "IdempotencyConflict",
    "InsufficientFunds",
    "LedgerError",
    "LedgerTransaction",
    "Leg",
    "MinistryFunds",
    "NoOpenReservation",
    "NotReversible",
    "ReservationView",
    "ReversalView",
    "ScheduledAmount",
    "StatementLine",
    "TrancheView",
    "allocation_account",
    "balance",
    "endow",
    "entry_page",
    "entry_rows",
    "fund_summary",
    "invariant_violations",
    "paid_account",
    "paid_by_project",
    "pay_key",
    "pay_tranche",
    "release_open",
    "released_by_project",
    "reservation_account",
    "reserve",
    "reserve_key",
    "reverse",
    "set_ceiling",
    "statement",
]
