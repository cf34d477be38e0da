"""Every patch the workflows carry, with why it exists and when it may go (README "Versioning").

v1 is the baseline: the histories in tests/histories were recorded with no patch, so the list
starts empty. From v1 on, a change to a workflow's commands is made behind
`workflow.patched(<id>)` and listed here; tests/unit/test_patches.py fails when a `patched` or
`deprecate_patch` call names an id that is not listed, or a listed id is used nowhere.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Patch:
    id: str  # the literal passed to workflow.patched / workflow.deprecate_patch
    why: str  # the change to the commands, in a sentence
    # Stored histories (file names in tests/histories) that replay each side: recorded before the
    # change (the old branch) and after it (the new one).
    histories_before: tuple[str, ...]
    histories_after: tuple[str, ...]
    # The first release that may turn `patched` into `deprecate_patch`: once no open workflow
    # started before the patch (the longest project runs ten years; each stage continues as new,
    # so "open" means a run begun before the patch's release).
    deprecate_after: str
    deprecated: bool = False  # true once the call is deprecate_patch; removed in the next release


PATCHES: tuple[Patch, ...] = (
    Patch(
        id="gate-decision-needed-timer",
        why=(
            "a gate round whose panel is complete keeps a timer to its due date (the last review "
            "re-plans the deadline: its pending timer cancelled, a new one started) and tells the "
            "programme manager a decision is needed when it passes undecided"
        ),
        histories_before=("project-HIST-v1-panel-gate-1-r1.json", "project-HIST-v1-panel-gate-2-r1.json"),
        histories_after=("project-HIST-v2-panel-gate-1-r1.json", "project-HIST-v2-panel-gate-2-r1.json"),
        # A round lasts its review period and extensions; once every round begun before the
        # release that carries it has closed, the next release may deprecate it.
        deprecate_after="v3",
    ),
    Patch(
        id="report-due-notices",
        why="A timer at each fiscal year's end and a report_due notice to the performer when its report is owed.",
        histories_before=("project-HIST-v1-reports-run1.json",),
        histories_after=("project-HIST-v2-reports-run1.json",),
        deprecate_after="v3",
    ),
    Patch(
        id="four-eyes-search-attribute",
        why=(
            "the project upserts AwaitingFourEyes while a due tranche waits for finance's second "
            "approver (ops' saved query in the Temporal UI)"
        ),
        histories_before=("project-HIST-v1-four-eyes-run1.json",),
        histories_after=("project-HIST-v2-four-eyes-run1.json",),
        # Each stage is a new run: once no run begun before the release that carries it is open.
        deprecate_after="v3",
    ),
    Patch(
        id="handoff-deadline-search-attributes",
        why=(
            "a hand-off upserts HandoffDeadline and HandoffOverdue at its start and HandoffOverdue "
            "when it escalates (ops' saved query for hand-offs past their deadline)"
        ),
        histories_before=("project-HIST-v1-overdue-handoff-MLIT.json",),
        histories_after=("project-HIST-v2-overdue-handoff-MLIT.json",),
        # A hand-off lasts its deadline and a re-route; once those begun before the release ended.
        deprecate_after="v3",
    ),
    Patch(
        id="report-wait-continue-as-new",
        why=(
            "a tranche held for an overdue progress report continues as new when Temporal suggests "
            "it, instead of adding a reminder's activity and timer to one history for years"
        ),
        histories_before=("project-HIST-v2-report-wait-unpatched-run1.json",),
        histories_after=(
            "project-HIST-v2-report-wait-run1.json",
            "project-HIST-v2-report-wait-run2.json",
            "project-HIST-v2-report-wait-run3.json",
        ),
        # Each stage is a new run; a held tranche's run begun before the release that carries it
        # may wait for years: it may go once none is open (the repair's visibility lists them).
        deprecate_after="v3",
    ),
    Patch(
        id="search-attributes-on-change",
        why=(
            "search attributes that never change come with the start options (the project's from "
            "the API, a gate round's and a hand-off's from the project's child start); every "
            "publish upserts only the values that changed (before: all of them, every time)"
        ),
        histories_before=(
            "project-HIST-v1-full-run1.json",
            "project-HIST-v1-full-run2.json",
            "project-HIST-v1-full-run4.json",
            "project-HIST-v1-full-gate-1-r1.json",
            "project-HIST-v1-full-handoff-MOD.json",
            "project-HIST-v2-overdue-handoff-MLIT.json",
        ),
        histories_after=(
            "project-HIST-v3-full-run1.json",
            "project-HIST-v3-full-run2.json",
            "project-HIST-v3-full-run4.json",
            "project-HIST-v3-full-gate-1-r1.json",
            "project-HIST-v3-full-handoff-MOD.json",
            "project-HIST-v3-overdue-handoff-MLIT.json",
        ),
        # Each stage is a new run, each round and hand-off a workflow of its own: once none begun
        # before the release that carries it is open.
        deprecate_after="v4",
    ),
    Patch(
        id="money-search-attributes",
        why=(
            "a project upserts StageNo, Phase and TranchesPaid when they change, so the "
            "reconciliation reads what the workflow believes through visibility, not a query per project"
        ),
        histories_before=("project-HIST-v1-four-eyes-run1.json",),
        histories_after=("project-HIST-v3-four-eyes-run1.json",),
        # Each stage is a new run: once no run begun before the release that carries it is open.
        deprecate_after="v4",
    ),
)
