"""What the v1 baseline of stored histories must cover, and what one history contains.

The recorder checks what it recorded against BASELINE before it writes anything, and
tests/test_replay.py checks the stored files against it: a path that stops being recorded (or a
scenario that silently takes another turn) fails both."""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory

from tests.histories.drive import BASELINE_TAG

ENCRYPTED = base64.b64encode(b"binary/encrypted").decode()  # a sealed payload's encoding, as stored


@dataclass
class Facts:
    """The calls and commands a history (or several runs of one workflow) shows."""

    updates: Counter[str] = field(default_factory=Counter)  # Updates accepted
    signals: Counter[str] = field(default_factory=Counter)  # signals received
    signals_sent: Counter[str] = field(default_factory=Counter)  # signals to other workflows
    activities: Counter[str] = field(default_factory=Counter)  # regular and local activities
    children: dict[str, str] = field(default_factory=dict)  # child workflow id -> type
    patches: set[str] = field(default_factory=set)  # patch ids recorded by `workflow.patched`
    cancel_requested: bool = False
    closed_as: str = ""  # the last event: completed, continued_as_new, canceled, failed, ...

    def add(self, other: Facts) -> None:
        """Fold in the next run of the same workflow."""
        for mine, theirs in (
            (self.updates, other.updates),
            (self.signals, other.signals),
            (self.signals_sent, other.signals_sent),
            (self.activities, other.activities),
        ):
            mine.update(theirs)
        self.children.update(other.children)
        self.patches |= other.patches
        self.cancel_requested = self.cancel_requested or other.cancel_requested
        self.closed_as = other.closed_as


def _marker_json(payloads: Iterable[object]) -> dict[str, object]:
    for p in payloads:
        return dict(json.loads(p.data))  # type: ignore[attr-defined]
    return {}


def facts(history: WorkflowHistory) -> Facts:
    f = Facts()
    for e in history.events:
        if e.HasField("workflow_execution_update_accepted_event_attributes"):
            f.updates[e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name] += 1
        elif e.HasField("workflow_execution_signaled_event_attributes"):
            f.signals[e.workflow_execution_signaled_event_attributes.signal_name] += 1
        elif e.HasField("signal_external_workflow_execution_initiated_event_attributes"):
            f.signals_sent[e.signal_external_workflow_execution_initiated_event_attributes.signal_name] += 1
        elif e.HasField("activity_task_scheduled_event_attributes"):
            f.activities[e.activity_task_scheduled_event_attributes.activity_type.name] += 1
        elif e.HasField("start_child_workflow_execution_initiated_event_attributes"):
            child = e.start_child_workflow_execution_initiated_event_attributes
            f.children[child.workflow_id] = child.workflow_type.name
        elif e.HasField("marker_recorded_event_attributes"):
            marker = e.marker_recorded_event_attributes
            if marker.marker_name == "core_patch":
                f.patches.add(str(_marker_json(marker.details["patch-data"].payloads)["id"]))
            elif marker.marker_name == "core_local_activity":
                f.activities[str(_marker_json(marker.details["data"].payloads)["activity_type"])] += 1
        elif e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCEL_REQUESTED:
            f.cancel_requested = True
    last = EventType.Name(history.events[-1].event_type) if history.events else ""
    f.closed_as = last.removeprefix("EVENT_TYPE_WORKFLOW_EXECUTION_").lower()
    return f


@dataclass(frozen=True)
class Expect:
    """What one workflow's histories must show; a name listed twice must occur at least twice."""

    updates: tuple[str, ...] = ()
    signals: tuple[str, ...] = ()
    signals_sent: tuple[str, ...] = ()
    activities: tuple[str, ...] = ()
    closed_as: str = "completed"
    cancel_requested: bool = False

    def misses(self, f: Facts) -> list[str]:
        out = []
        for what, wanted, seen in (
            ("Update", self.updates, f.updates),
            ("signal received", self.signals, f.signals),
            ("signal sent", self.signals_sent, f.signals_sent),
            ("activity", self.activities, f.activities),
        ):
            for name, n in Counter(wanted).items():
                if seen[name] < n:
                    out.append(f"{what} {name} x{n} (seen {seen[name]})")
        if f.closed_as != self.closed_as:
            out.append(f"closed as {self.closed_as} (was {f.closed_as or 'nothing'})")
        if self.cancel_requested and not f.cancel_requested:
            out.append("a cancel request")
        return out


@dataclass(frozen=True)
class Path_:
    """One path: its project (at least `runs` runs) and the child workflows it must have started,
    by the suffix of their id after the project's workflow id (`gate-1-r1`, `handoff-MOD`, ...)."""

    project: Expect
    children: Mapping[str, Expect] = field(default_factory=dict)
    runs: int = 1


STOPPED = ("release_reservations", "close_out")  # the one clean stop
COMPLETED = ("complete_project",)
ROUND = Expect(updates=("open_review", "respond", "respond", "respond", "submit_review", "submit_review", "decide"))
ANSWERED = Expect(updates=("answer",), activities=("prepare_handoff", "record_answer"))
WITHDRAWN = Expect(signals=("withdraw",), activities=("prepare_handoff", "record_answer"))
TWO_GATES = {"gate-1-r1": ROUND, "gate-2-r1": ROUND, "handoff-MOD": ANSWERED}
DONE = Expect(activities=COMPLETED, signals=("handoff_changed",))

BASELINE: dict[str, Path_] = {
    "full": Path_(
        DONE,
        {**{f"gate-{n}-r1": ROUND for n in (1, 2, 3, 4)}, "handoff-MOD": ANSWERED, "handoff-MLIT": ANSWERED},
        runs=4,
    ),
    "conditional-go": Path_(Expect(updates=("verify_conditions",), activities=COMPLETED), TWO_GATES, runs=2),
    "conditions-missed-hold": Path_(
        Expect(updates=("resume",), activities=(*COMPLETED, "set_status", "set_status")), TWO_GATES, runs=2
    ),
    "conditions-missed-stop": Path_(Expect(activities=STOPPED), {"gate-1-r1": ROUND}, runs=2),
    "hold-resume": Path_(
        Expect(updates=("resume",), activities=(*COMPLETED, "set_status", "set_status")),
        {**TWO_GATES, "gate-1-r2": ROUND},
        runs=3,
    ),
    "recycle": Path_(
        Expect(activities=(*COMPLETED, "reserve_stage", "pay_tranche")), {**TWO_GATES, "gate-1-r2": ROUND}, runs=3
    ),
    "kill": Path_(Expect(activities=("record_decision", *STOPPED)), {"gate-1-r1": ROUND}),
    "four-eyes": Path_(
        Expect(
            updates=("sign_tranche",) * 4,
            activities=(*COMPLETED, "record_signature", "pay_tranche", "pay_tranche"),
        ),
        {"gate-1-r1": ROUND, "handoff-MOD": ANSWERED},
    ),
    "reports": Path_(
        Expect(
            updates=("submit_report", "submit_report", "review_report", "review_report"),
            activities=(*COMPLETED, "record_report", "pay_tranche", "pay_tranche"),
        ),
        {"gate-1-r1": ROUND, "handoff-MOD": ANSWERED},
    ),
    "funds-short": Path_(
        # The first reservation is refused (the ceiling), the one after the resume goes through.
        Expect(updates=("resume",), activities=(*COMPLETED, "reserve_stage", "reserve_stage", "notify")),
        {"gate-1-r1": ROUND, "handoff-MOD": ANSWERED},
    ),
    "handoffs": Path_(
        Expect(
            updates=("start_demo_handoff", "reroute_handoff", "conclude_handoffs"),
            signals=("handoff_changed",) * 4,
            activities=COMPLETED,
        ),
        {
            "gate-1-r1": ROUND,
            "gate-2-r1": ROUND,
            "demo-MOD": ANSWERED,
            "handoff-MOD": ANSWERED,
            "handoff-MLIT": ANSWERED,
            "handoff-NPA": ANSWERED,
        },
        runs=2,
    ),
    "overdue": Path_(
        Expect(updates=("reroute_handoff",), signals=("handoff_changed",) * 2, activities=COMPLETED),
        {
            "gate-1-r1": ROUND,
            # two reminders and the escalation, then the re-route's withdrawal
            "handoff-MLIT": Expect(
                signals=("withdraw",), signals_sent=("handoff_changed",), activities=("handoff_notice",) * 3
            ),
            "handoff-NPA": ANSWERED,
        },
    ),
    "panel": Path_(
        DONE,
        {
            "gate-1-r1": Expect(
                updates=(
                    "submit_evidence",
                    "respond",
                    "invite",
                    "reassign",
                    "extend_deadline",
                    "submit_review",
                    "amend_review",
                    "decide",
                ),
                activities=("notify",) * 2,  # at least a reminder and the escalation
            ),
            "gate-2-r1": ROUND,
            "handoff-MOD": ANSWERED,
        },
        runs=2,
    ),
    "withdraw": Path_(Expect(updates=("withdraw",), activities=STOPPED)),
    "terminate-stage": Path_(Expect(updates=("terminate",), activities=STOPPED)),
    "cancel": Path_(Expect(activities=STOPPED, cancel_requested=True)),
    "terminate-gate": Path_(
        Expect(updates=("terminate",), activities=STOPPED),
        {"gate-1-r1": Expect(updates=("open_review", "respond", "submit_review"), closed_as="canceled")},
    ),
    "terminate-handoff": Path_(
        Expect(updates=("terminate",), signals_sent=("withdraw", "withdraw"), activities=STOPPED),
        {"gate-1-r1": ROUND, "gate-2-r1": ROUND, "handoff-MOD": WITHDRAWN, "handoff-MLIT": WITHDRAWN},
        runs=2,
    ),
    "hold-limit": Path_(Expect(activities=(*STOPPED, "set_status")), {"gate-1-r1": ROUND}),
}


def project_workflow_id(path: str, tag: str = BASELINE_TAG) -> str:
    return f"project-HIST-{tag}-{path}"


def run_files(directory: Path, path: str, tag: str = BASELINE_TAG) -> list[Path]:
    """The project's runs as stored, in order (`project-<id>-run<n>.json`)."""
    wid = project_workflow_id(path, tag)
    runs = []
    n = 1
    while (f := directory / f"{wid}-run{n}.json").exists():
        runs.append(f)
        n += 1
    return runs


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, path.read_text())


def check_path(directory: Path, path: str, tag: str = BASELINE_TAG) -> list[str]:
    """What the stored histories of one path miss, as readable lines (empty: covered)."""
    spec = BASELINE[path]
    wid = project_workflow_id(path, tag)
    runs = run_files(directory, path, tag)
    if len(runs) < spec.runs:
        return [f"{path}: {len(runs)} runs stored ({wid}-run<n>.json), at least {spec.runs} expected"]
    project = Facts()
    for f in runs:
        project.add(facts(load(f)))
    problems = [f"{path}: project misses {m}" for m in spec.project.misses(project)]
    for suffix, expect in spec.children.items():
        child_id = f"{wid}-{suffix}"
        if child_id not in project.children:
            problems.append(f"{path}: the project never started {child_id}")
        stored = directory / f"{child_id}.json"
        if not stored.exists():
            problems.append(f"{path}: {stored.name} is not stored")
            continue
        problems += [f"{path}: {suffix} misses {m}" for m in expect.misses(facts(load(stored)))]
    return problems
