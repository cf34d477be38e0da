"""Migration 0004: the registries of research visions and technology areas, and every existing
project's free-text vision mapped to a vision row it then names; down to 0003 and up again, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from alembic import command
from sqlalchemy import inspect, select, text

from storage import migrate
from storage.db import make_engine, make_sessionmaker
from storage.models import Project, ResearchVision
from tests.test_storage import _schema_drift

_INSERT = text(
    "INSERT INTO projects (id, programme_code, workflow_id, title, organisation, programme_manager,"
    " funding_ministry, research_vision, classification, start_trl, target_trl, current_trl, stage_no, status,"
    " total_budget, reviewers, public_use_ministries, lessons, label_level, label_compartments, created_at,"
    " updated_at) VALUES (:id, 'KPROGRAM', :wf, 'Old project', 'Org', 'pm.sato', 'MEXT', :vision,"
    " 'open', 1, 4, 1, 1, 'active', 1000, '[\"rev.ito\"]', '[\"MOD\"]', '', 0, '[]', CURRENT_TIMESTAMP,"
    " CURRENT_TIMESTAMP)"
)


async def _tables_and_columns(db_url: str) -> tuple[set[str], set[str]]:
    engine = make_engine(db_url)
    async with engine.connect() as conn:
        found = await conn.run_sync(
            lambda c: (
                set(inspect(c).get_table_names()),
                {col["name"] for col in inspect(c).get_columns("projects")},
            )
        )
    await engine.dispose()
    return found


async def test_the_visions_migration_maps_free_text_and_goes_down_to_0003_and_up_again(db_url: str) -> None:
    """Projects started before the registry (their vision only as text): the upgrade makes one
    vision per distinct text (its responsible ministry the project's funding ministry, the whole
    text its description, a long one shortened to a title) and each project names its own; the
    downgrade keeps the projects and their text."""
    assert {"research_visions", "technology_areas"} <= (await _tables_and_columns(db_url))[0]
    await asyncio.to_thread(command.downgrade, migrate.alembic_config(db_url), "0003")
    tables, columns = await _tables_and_columns(db_url)
    assert not {"research_visions", "technology_areas"} & tables and not {"vision_id", "area_id"} & columns
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    long_text = "Quantum sensing for navigation without satellites. " * 10
    texts = {"A": "Maritime domain awareness", "B": "Maritime domain awareness", "C": long_text}
    for key, vision in texts.items():
        # Today's Project model names vision_id, which 0003 lacks: rows as 0003 knew them.
        async with sm.begin() as session:
            await session.execute(_INSERT, {"id": f"MIG-{key}", "wf": f"project-MIG-{key}", "vision": vision})
    await engine.dispose()

    await asyncio.to_thread(migrate.upgrade, db_url)
    assert await asyncio.to_thread(_schema_drift, db_url) == []
    engine = make_engine(db_url)
    async with make_sessionmaker(engine)() as session:
        rows = {p.id: p for p in (await session.scalars(select(Project).where(Project.id.like("MIG-%")))).all()}
        visions = {v.id: v for v in (await session.scalars(select(ResearchVision))).all()}
    await engine.dispose()
    assert rows["MIG-A"].vision_id == rows["MIG-B"].vision_id is not None
    maritime, quantum = visions[rows["MIG-A"].vision_id], visions[rows["MIG-C"].vision_id]  # type: ignore[index]
    assert (maritime.title, maritime.description, maritime.ministry) == (texts["A"], texts["A"], "MEXT")
    assert len(quantum.title) == 200 and quantum.title.endswith("…") and quantum.description == long_text
    assert quantum.retired_at is None and rows["MIG-C"].research_vision == long_text  # the text is kept
