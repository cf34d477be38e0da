"""The project workflow, one module per concern composed into one class (see workflow.py)."""

from workflows.project.workflow import ProjectWorkflow, workflow_id_for

__all__ = ["ProjectWorkflow", "workflow_id_for"]
