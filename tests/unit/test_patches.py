"""The patch registry (workflows/patches.py) cannot drift from the patches the workflows carry."""

from __future__ import annotations

import ast
from pathlib import Path

from workflows.patches import PATCHES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / "workflows"
HISTORIES = ROOT / "tests" / "histories"
PATCH_CALLS = {"patched", "deprecate_patch"}


def patch_ids_in(source: str, path: Path) -> set[str]:
    """The ids passed to workflow.patched / workflow.deprecate_patch: a string literal, or the name
    of a module-level string constant (PATCH_X = "x")."""
    tree = ast.parse(source, str(path))
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    ids: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and node.args):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None
        if name not in PATCH_CALLS:
            continue
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            ids.add(arg.value)
        elif isinstance(arg, ast.Name) and arg.id in constants:
            ids.add(constants[arg.id])
        else:
            raise AssertionError(f"{path}:{node.lineno}: a patch id must be a literal or a module constant")
    return ids


def used_patch_ids() -> dict[str, Path]:
    return {pid: path for path in WORKFLOWS.rglob("*.py") for pid in patch_ids_in(path.read_text(), path)}


def test_every_patch_in_the_workflows_is_registered() -> None:
    registered = {p.id for p in PATCHES}
    unregistered = {pid: str(path.relative_to(ROOT)) for pid, path in used_patch_ids().items() if pid not in registered}
    assert not unregistered, f"add these to workflows/patches.py: {unregistered}"


def test_every_registered_patch_is_used_once_and_covered_by_histories() -> None:
    used = used_patch_ids()
    ids = [p.id for p in PATCHES]
    assert len(ids) == len(set(ids)), "a patch id is registered twice"
    for patch in PATCHES:
        assert patch.id in used, f"{patch.id} is registered but no workflow calls it: remove it"
        assert patch.why.strip() and patch.deprecate_after.strip()
        for name in (*patch.histories_before, *patch.histories_after):
            assert (HISTORIES / name).is_file(), f"{patch.id}: history {name} is not in tests/histories"
        assert patch.histories_before and patch.histories_after, f"{patch.id}: both sides need a history"


def test_the_scan_finds_literals_and_constants_and_refuses_anything_else() -> None:
    source = (
        'from temporalio import workflow\nPATCH_A = "a-change"\n'
        "def f():\n    workflow.patched(PATCH_A)\n    workflow.deprecate_patch('b-change')\n"
    )
    assert patch_ids_in(source, Path("x.py")) == {"a-change", "b-change"}
    try:
        patch_ids_in("from temporalio import workflow\nworkflow.patched(make_id())\n", Path("y.py"))
    except AssertionError as err:
        assert "literal or a module constant" in str(err)
    else:
        raise AssertionError("a computed patch id went unnoticed")
