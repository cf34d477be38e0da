"""One round of a gate review, as its own workflow `project-<id>-gate-<n>-r<round>`.

Evidence comes in (or the programme manager opens the review anyway); each invited reviewer
accepts or declines and declares conflicts of interest before seeing any material; reviews are
independent (nobody sees another's review before submitting their own) and may be amended until
the panel closes; reminders go out before the deadline and the programme manager is told when it
passes; the deadline can be extended (the timers follow it) and a silent reviewer replaced. The
round closes with the programme manager's decision, which the project workflow then carries out.

One module per concern, composed into the workflow class (Temporal finds handlers on base
classes): `round` the state and what every handler shares, `panel` the invitations, `reviews` the
evidence and the reviews, `deadlines` the reminder and escalation timers, `decision` the close.
"""

from workflows.gate_review.round import gate_workflow_id
from workflows.gate_review.workflow import GateReviewWorkflow

__all__ = ["GateReviewWorkflow", "gate_workflow_id"]
