"""The programme this deployment runs: the K Program fund and its allocation to ministries.

Workflows, the API and the seed read these facts from here; storage only writes them.
"""

from __future__ import annotations

PROGRAMME_CODE = "KPROGRAM"
PROGRAMME_NAME = "Economic Security Key Technology Development Programme (K Program)"
FUND_TOTAL = 250_000_000_000
ALLOCATIONS = {"MEXT": 125_000_000_000, "METI": 125_000_000_000}
