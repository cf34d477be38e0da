"""trlgate command line."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cli import mail as mail_cli
from cli.exit import hard_exit
from config import get_settings
from domain.programme import PROGRAMME_CODE
from domain.roles import Role
from storage import fund_checks, ledger, migrate
from storage.audit import audit
from storage.db import make_engine, make_sessionmaker
from storage.seed import UserExists, add_user, seed_demo, seed_programme

T = TypeVar("T")
app = typer.Typer(help="trlgate: TRL-gated stage-gate workflows for public R&D funding.", no_args_is_help=True)
console = Console()

DEMO_SECONDS_PER_DAY = 0.1  # a three-year stage passes in under two minutes


@app.command()
def up(
    seconds_per_day: Annotated[
        float | None, typer.Option(help="Real seconds per simulated day (default 0.1 here; 86400 in production).")
    ] = None,
    demo: Annotated[
        bool, typer.Option(help="Load the demo portfolio (a dozen projects) on a fresh data folder.")
    ] = True,
) -> None:
    """Run the whole stack on embedded defaults: Temporal dev server + UI, worker, API, SQLite."""
    from cli.stack import run_stack

    settings = get_settings()
    if seconds_per_day is not None:
        settings.seconds_per_day = seconds_per_day
    elif "TRLGATE_SECONDS_PER_DAY" not in os.environ:
        settings.seconds_per_day = DEMO_SECONDS_PER_DAY
    raise typer.Exit(run_stack(settings, demo=demo))


@app.command("migrate")
def migrate_cmd() -> None:
    """Apply database migrations (SQLite or PostgreSQL, from TRLGATE_DATABASE_URL)."""
    settings = get_settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    migrate.upgrade(settings.resolved_database_url)
    # The URL holds the password when it comes from TRLGATE_DATABASE_PASSWORD(_FILE): never print it.
    console.print(f"migrated {make_url(settings.resolved_database_url).render_as_string(hide_password=True)}")


async def _with_sessionmaker(
    work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]], *, read_only: bool = False
) -> T:
    settings = get_settings()
    engine = make_engine(settings.resolved_database_url)
    try:
        # Whatever the CLI audits is anchored with the deployment's key, like the API's entries.
        key = None if read_only else settings.resolved_audit_key()
        return await work(make_sessionmaker(engine, audit_key=key))
    finally:
        await engine.dispose()


@app.command()
def seed(demo: Annotated[bool, typer.Option(help="Also create the demo users.")] = True) -> None:
    """Seed the programme (K Program fund, ministries) and, by default, the demo users."""
    settings = get_settings()

    async def work(sm: async_sessionmaker[AsyncSession]) -> int:
        if demo:
            return len(await seed_demo(sm, settings.demo_password))
        async with sm.begin() as session:
            await seed_programme(session)
        return 0

    created = asyncio.run(_with_sessionmaker(work))
    console.print(f"seeded programme {PROGRAMME_CODE}; {created} demo users created")


@app.command("add-user")
def add_user_cmd(
    username: str,
    role: Annotated[list[Role], typer.Option("--role", "-r", help="Repeat for several roles.")],
    full_name: Annotated[str, typer.Option(help="Display name.")],
    ministry: Annotated[str | None, typer.Option(help="Ministry code, for ministry liaisons.")] = None,
    password: Annotated[str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True)] = "",
) -> None:
    """Add a user with one or more roles."""
    if len(password) < 8:
        console.print("[red]the password needs at least 8 characters[/red]")
        raise typer.Exit(2)

    async def work(sm: async_sessionmaker[AsyncSession]) -> None:
        async with sm.begin() as session:
            await add_user(session, username, full_name, password, role, ministry)

    try:
        asyncio.run(_with_sessionmaker(work))
    except (UserExists, ValueError) as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"added {username} ({', '.join(r.value for r in role)})")


@app.command("fund-check")
def fund_check() -> None:
    """Check the ledger's invariants and record the result (GET /fund shows it); exit 1 when any
    is broken."""

    async def work(sm: async_sessionmaker[AsyncSession]) -> tuple[list[ledger.MinistryFunds], list[str]]:
        async with sm.begin() as session:
            check = await fund_checks.run_and_record(session, programme_code=PROGRAMME_CODE, ran_by="cli:fund-check")
            return await ledger.fund_summary(session, PROGRAMME_CODE), list(check.violations)

    rows, problems = asyncio.run(_with_sessionmaker(work))
    for r in rows:
        console.print(
            f"{r.ministry}: allocated {r.allocated:,} reserved {r.reserved:,} paid {r.paid:,} available {r.available:,}"
        )
        for y in r.fiscal_years:
            ceiling = "no ceiling" if y.ceiling is None else f"ceiling {y.ceiling:,} + carried {y.carried_in:,}"
            available = "" if y.available is None else f", available {y.available:,}"
            console.print(f"  FY{y.fiscal_year}: {ceiling}; reserved {y.reserved:,}, paid {y.paid:,}{available}")
    for p in problems:
        console.print(f"[red]{p}[/red]")
    console.print("books balance" if not problems else f"{len(problems)} problem(s)")
    raise typer.Exit(1 if problems else 0)


@app.command("set-ceiling")
def set_ceiling(
    ministry: Annotated[str, typer.Argument(help="Funding ministry, e.g. MEXT.")],
    fiscal_year: Annotated[int, typer.Argument(help="FY2026 is 1 April 2026 - 31 March 2027.")],
    amount: Annotated[int, typer.Argument(help="Integer yen.")],
    by: Annotated[str, typer.Option(help="Who sets it (audited).")] = "cli",
) -> None:
    """Set a ministry's ceiling for a fiscal year (unused ceiling carries over to the next year)."""

    async def work(sm: async_sessionmaker[AsyncSession]) -> None:
        async with sm.begin() as session:
            await ledger.set_ceiling(
                session,
                programme_code=PROGRAMME_CODE,
                ministry=ministry,
                fiscal_year=fiscal_year,
                amount=amount,
                actor=by,
            )
            audit(session, by, "set_ceiling", f"ceiling:{ministry}:FY{fiscal_year}", "ok", amount=amount)

    try:
        asyncio.run(_with_sessionmaker(work))
    except ledger.LedgerError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
    console.print(f"{ministry} FY{fiscal_year} ceiling: {amount:,} yen")


@app.command()
def unlock(
    username: str,
    by: Annotated[str, typer.Option(help="Who unlocks it (audited).")] = "cli",
) -> None:
    """Clear a user's sign-in lock and failure count, e.g. after someone locked it on purpose."""
    from services.sign_in import USERNAME_MAX
    from storage import throttle

    if len(username) > USERNAME_MAX or not username.isprintable():
        console.print(f"[red]not a username: printable, at most {USERNAME_MAX} characters[/red]")
        raise typer.Exit(2)

    async def work(sm: async_sessionmaker[AsyncSession]) -> bool:
        async with sm.begin() as session:
            return await throttle.unlock(session, username, by, datetime.now(UTC))

    was_locked = asyncio.run(_with_sessionmaker(work))
    console.print(f"{username} unlocked" if was_locked else f"{username} was not locked; failure count cleared")


@app.command()
def reconcile() -> None:
    """Compare every project's ledger figures with its workflow; exit 1 when anything drifted.
    Each drift is printed as it is found (a page of projects at a time, workflow state through
    Temporal's visibility), so memory stays flat however large the programme."""
    from connection.client import connect
    from services.workflow_views import workflow_views
    from storage.reconcile import Tally, stream

    settings = get_settings()
    tally = Tally()

    async def work(sm: async_sessionmaker[AsyncSession]) -> None:
        client = await connect(settings)
        async with sm() as session:
            async for d in stream(session, lambda page: workflow_views(client, page), tally):
                console.print(f"[red]{d.project_id}[/red]: {d.problem}")

    asyncio.run(_with_sessionmaker(work))
    console.print(f"{tally.checked} project(s) checked, {tally.drifts} drift(s)")
    raise typer.Exit(1 if tally.drifts else 0)


@app.command()
def repair() -> None:
    """Run the daily repair now (a worker must be running): close out projects whose workflow was
    terminated in Temporal, print what it did and the drift it left alone; exit 1 on drift."""
    from temporalio.common import WorkflowIDConflictPolicy

    from activities.repair import SCHEDULE_ID, RepairRequest, RepairResult
    from connection.client import connect
    from workflows.repair import RepairWorkflow

    settings = get_settings()

    async def work() -> RepairResult:
        client = await connect(settings)
        # One id per second: a second command meanwhile waits for the same run (it changes nothing twice).
        return await client.execute_workflow(
            RepairWorkflow.run,
            RepairRequest(ran_by="cli:repair"),
            id=f"{SCHEDULE_ID}-now-{datetime.now(UTC):%Y%m%dT%H%M%SZ}",
            task_queue=settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )

    result = asyncio.run(work())
    for r in result.repaired:
        console.print(f"repaired {r.project_id}: released {r.released:,} yen; close-out report {r.document_id}")
    for d in result.drift:
        console.print(f"[red]{d.project_id}[/red]: {d.problem}")
    console.print(result.details())
    raise typer.Exit(1 if result.drift else 0)


@app.command("send-payments")
def send_payments() -> None:
    """Send what is pending in the payment outbox once (the worker also does this continuously)."""
    from activities.payments import FileDropSink, PaymentSender

    settings = get_settings()

    async def work(sm: async_sessionmaker[AsyncSession]) -> int:
        sender = PaymentSender(sm, FileDropSink(settings.resolved_payments_dir))
        total = 0
        while sent := await sender.send_pending():
            total += len(sent)
        return total

    console.print(
        f"{asyncio.run(_with_sessionmaker(work))} payment instruction(s) sent to {settings.resolved_payments_dir}"
    )


@app.command("audit-verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="The checkpoint file (default: TRLGATE_AUDIT_CHECKPOINT, or data_dir/audit-checkpoint); keep it "
            "where the database's writer cannot change it."
        ),
    ] = None,
) -> None:
    """Check the audit log's hash chain, its anchors and the last checkpoint (with the audit key);
    report the first broken link and exit 1. A log that holds writes the next checkpoint."""
    from storage import audit_checkpoint
    from storage.audit import ChainReport, verify_chain

    settings = get_settings()
    key = settings.resolved_audit_key(create=False)
    path = checkpoint or settings.resolved_audit_checkpoint
    try:
        previous = audit_checkpoint.read(path, key) if key else None
    except audit_checkpoint.CheckpointError as err:
        console.print(f"[red]{path}: {err}[/red]")
        raise typer.Exit(1) from err

    async def work(sm: async_sessionmaker[AsyncSession]) -> tuple[ChainReport, str | None]:
        async with sm() as session:
            report = await verify_chain(session, key)
            since = None
            if previous is not None and report.broken_at is None:
                since = await audit_checkpoint.problem_since(session, previous, report.checked)
            return report, since

    report, since = asyncio.run(_with_sessionmaker(work, read_only=True))
    if report.broken_at is not None:
        console.print(f"[red]broken at audit entry {report.broken_at}: {report.problem}[/red]")
        console.print(f"{report.checked} entries verified before it")
        raise typer.Exit(1)
    if since is not None:
        console.print(f"[red]{since}[/red]")
        raise typer.Exit(1)
    console.print(f"audit log intact: {report.checked} entries verified, {report.anchored} anchored")
    if key is None:
        console.print(
            "[yellow]anchors not checked: no audit key here (TRLGATE_AUDIT_KEY or data_dir/audit-key); "
            "the hash chain alone does not stop someone who can write to the database[/yellow]"
        )
        return
    if report.unanchored:
        console.print(
            f"{report.unanchored} entries from before anchoring began are covered by entry {report.vouched_by}'s anchor"
        )
    if previous is not None:
        console.print(f"entry {previous.entry_id} of the checkpoint of {previous.taken_at} is still in place")
    if report.checked:
        taken_at = datetime.now(UTC).isoformat(timespec="seconds")
        audit_checkpoint.write(
            path, audit_checkpoint.Checkpoint(report.last_id, report.last_hash, report.checked, taken_at), key
        )
        console.print(f"checkpoint written to {path}: entry {report.last_id} of {report.checked}")


@app.command("rotate-key")
def rotate_key() -> None:
    """Put a new payload encryption key in front of the keyring file (old keys stay to open old
    payloads); restart workers and the API to seal with it. With TRLGATE_CODEC_KEYS set, rotate there."""
    from config import get_settings

    settings = get_settings()
    if settings.codec_keys:
        console.print("[red]the keyring comes from TRLGATE_CODEC_KEYS: put the new key in front there[/red]")
        raise typer.Exit(2)
    rotated = settings.keyring().rotated()
    path = settings.keyring_path
    tmp = path.with_suffix(".new")
    tmp.write_text(rotated.dump())
    tmp.chmod(0o600)
    tmp.replace(path)  # atomic: a crash leaves the old keyring or the new one, never half of one
    console.print(f"active key is now {rotated.active[0]}; {len(rotated.keys)} keys in {path}")


app.command("mail-sink")(mail_cli.mail_sink)
app.command("send-mail")(mail_cli.send_mail)
app.command("mail-outbox")(mail_cli.mail_outbox)
app.command("set-email")(mail_cli.set_email)


@app.command()
def replay(
    history: Annotated[Path, typer.Argument(help="A history as `temporal workflow show --output json` writes it.")],
) -> None:
    """Replay a workflow's history against this code (the worker's workflows, the deployment's
    keyring): shows why a workflow task fails, e.g. a command changed without workflow.patched."""
    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    import worker as worker_module
    from connection.codec import data_converter

    try:
        loaded = WorkflowHistory.from_json(history.stem, history.read_text())
    except (OSError, ValueError) as err:
        console.print(f"[red]cannot read a history from {history}: {err}[/red]")
        raise typer.Exit(2) from err
    replayer = Replayer(
        workflows=worker_module.WORKFLOWS,
        data_converter=data_converter(get_settings().keyring()),
        workflow_runner=worker_module.workflow_runner(),
    )
    result = asyncio.run(replayer.replay_workflow(loaded, raise_on_replay_failure=False))
    if result.replay_failure is not None:
        console.print(f"[red]{history.name} does not replay: {result.replay_failure}[/red]")
        raise typer.Exit(1)
    console.print(f"{history.name} replays on this code")


@app.command()
def worker() -> None:
    """Run a worker (scale out by running more)."""
    import worker as worker_module

    worker_module.main()


def main() -> None:
    try:
        app()
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        hard_exit(code)
    hard_exit(0)
