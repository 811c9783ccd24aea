"""`vfbot create`, `requests`, `status`, `cancel` and `worker`: requests and the engine that
carries them out, without Slack."""

from __future__ import annotations

import argparse
import asyncio
import functools
import logging
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from bot.cli.common import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_OK,
    EXIT_PARTIAL,
    AddParser,
    actor,
    confirm,
    open_core,
    panel_error_text,
    settings_of,
    stop_signals,
    until_stopped,
)
from bot.logfields import set_process_fields
from bot.provisioning import events
from bot.provisioning.engine import TickReport
from bot.provisioning.errors import InvalidValueError, PlanError
from bot.provisioning.intake import Origin
from bot.provisioning.model import (
    IN_FLIGHT_INSTANCE_STATES,
    TERMINAL_REQUEST_STATES,
    EventRecord,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
    parse_human_id,
)
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.plan import render_plan_text
from bot.provisioning.request import RequestError
from bot.provisioning.transitions import Sleep
from bot.virtfusion import VirtFusionError

if TYPE_CHECKING:
    from bot.app import Core
    from bot.ops import Ops
    from bot.scheduler import Supervisor

__all__ = [
    "CLI_SUBSCRIBER",
    "add_parsers",
    "cmd_cancel",
    "cmd_create",
    "cmd_requests",
    "cmd_status",
    "cmd_worker",
    "describe_event",
    "exit_code_for",
]

logger = logging.getLogger("bot.cli.worker")

CLI_SUBSCRIBER = "cli"
"""The outbox subscriber whose events the CLI prints (`create --wait`, `worker`)."""

_SHOWN = events.MILESTONES | {events.REQUEST_FINISHED, events.INSTANCE_WAITING}

_STEP = {
    InstanceState.PLANNED: 0,
    InstanceState.CREATING: 1,
    InstanceState.CREATE_UNKNOWN: 1,
    InstanceState.CREATED: 2,
    InstanceState.BUILDING: 3,
}


def exit_code_for(state: RequestState) -> int:
    """0 all built, 3 some failed, 1 nothing built (failed, rejected, expired, cancelled)."""
    if state is RequestState.COMPLETED:
        return EXIT_OK
    if state is RequestState.PARTIALLY_FAILED:
        return EXIT_PARTIAL
    return EXIT_FAILED


describe_event = events.describe
"""One line per outbox event, for the CLI subscriber (`bot.provisioning.events.describe`)."""


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def _request_id(text: str) -> int:
    """The number of ``VF-n``; InvalidValueError (a usage problem) for anything else."""
    request_id = parse_human_id(text)
    if request_id is None:
        raise InvalidValueError(f"{text!r} is not a request id; use the form VF-12.")
    return request_id


async def cmd_create(args: argparse.Namespace, out: Console) -> int:
    """Plan a request file, confirm, submit it, and optionally carry it out here."""
    settings = settings_of(args)
    try:
        raw = _read(args.file)
    except OSError as error:
        out.print(f"Cannot read {args.file}: {error.strerror or error}", markup=False)
        return EXIT_CONFIG
    async with open_core(settings) as core:
        try:
            request = core.intake.parse(raw)
        except RequestError as error:
            out.print(f"{args.file} is not a valid request:\n{error}", markup=False)
            return EXIT_CONFIG
        try:
            # The command line is the operator's: like approval, VF_MAX_LIFETIME does not apply.
            plan = await core.intake.plan(request, admin=True)
        except PlanError as error:
            out.print(str(error), markup=False)
            return EXIT_FAILED
        except VirtFusionError as error:
            out.print(f"Could not plan the request: {panel_error_text(error)}", markup=False)
            return EXIT_FAILED
        out.print(render_plan_text(plan), markup=False)
        if args.dry_run:
            out.print("Dry run: the panel accepted the plan; nothing was created.")
            return EXIT_OK
        if not await confirm(
            out,
            f"Create {len(plan.servers)} server(s)?",
            yes=args.yes,
            no_terminal="Not confirmed (no terminal): add --yes to create these servers.",
            refused="Nothing was created.",
        ):
            return EXIT_FAILED
        origin = Origin(key=f"cli:{uuid.uuid4()}", requester=actor(), source="cli")
        record, _ = await core.intake.submit(request, plan, origin, approval_required=False)
        out.print(f"Submitted {record.human_id}.")
        if not args.wait:
            out.print(
                f"A running `vfbot worker` or `vfbot serve` carries it out; follow it with "
                f"`vfbot status {record.human_id}`."
            )
            return EXIT_OK
        return await _wait(core, record, out)


def _supervisor(name: str, out: Console, sleep: Sleep) -> Supervisor:
    """The loop's error edge: a panel or database failure is said once, waited out, and its
    end said too; only a configuration error stops the loop."""
    from bot.scheduler import Supervisor

    def tell(cause: str | None) -> None:
        if cause is None:
            out.print(f"{name}: working again.", markup=False)
        else:
            out.print(
                f"{name}: cannot work right now ({cause}); retrying until it can. Nothing is "
                "lost or done twice: servers already asked for are checked, not created again.",
                markup=False,
            )

    return Supervisor(name, sleep=sleep, max_s=_MAX_WAIT_S, on_change=tell)


async def _wait(
    core: Core, record: RequestRecord, out: Console, *, sleep: Sleep = asyncio.sleep
) -> int:
    """Run the engine here until the request ends, showing progress per server."""
    consumer = _cli_consumer(core, out)
    supervisor = _supervisor("vfbot create --wait", out, sleep)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        console=out,
        disable=not out.is_terminal,
    )
    tasks: dict[int, TaskID] = {}
    try:
        with progress:
            while True:
                seen = await supervisor.run(lambda: _tick_and_read(core, consumer, record.id))
                if seen is None:
                    continue  # the supervisor said why and waited
                report, (current, instances) = seen
                for inst in instances:
                    if inst.id not in tasks:
                        tasks[inst.id] = progress.add_task(inst.name, total=4, state="")
                    progress.update(
                        tasks[inst.id], completed=_STEP.get(inst.state, 4), state=inst.state.value
                    )
                if current.state in TERMINAL_REQUEST_STATES:
                    break
                if not report.busy:
                    await sleep(core.settings.vf_poll_interval)
    except (KeyboardInterrupt, asyncio.CancelledError):
        out.print(
            f"\nStopped watching. {record.human_id} is saved and continues when `vfbot worker` "
            f"or `vfbot serve` runs; `vfbot status {record.human_id}` shows where it is."
        )
        raise
    await consumer.drain()
    current, instances = await core.requests.get(record.id)
    out.print(_servers_table(current, instances))
    return exit_code_for(current.state)


async def _tick_and_read(
    core: Core, consumer: OutboxConsumer, request_id: int
) -> tuple[TickReport, tuple[RequestRecord, list[InstanceRecord]]]:
    report = await core.engine.run_once()
    await consumer.drain()
    return report, await core.requests.get(request_id)


def _cli_consumer(core: Core, out: Console, *, quiet: bool = False) -> OutboxConsumer:
    """The CLI's outbox subscriber: prints milestones (not when `quiet`: with LOG_FORMAT=json
    the log has them, and stdout stays free of anything but JSON)."""

    async def show(event: EventRecord) -> None:
        if quiet:
            return
        if event.kind in _SHOWN:
            out.print(describe_event(event), markup=False)
            out.file.flush()  # marked delivered next: the line must not sit in a buffer

    return core.outbox(CLI_SUBSCRIBER, show)


def _noted(instance: InstanceRecord) -> bool:
    return instance.state in (InstanceState.FAILED, InstanceState.PLANNED) or (
        instance.state in IN_FLIGHT_INSTANCE_STATES
    )


def _servers_table(record: RequestRecord, instances: Sequence[InstanceRecord]) -> Table:
    table = Table(title=f"{record.human_id} {record.project_name}: {record.state.value}")
    for column in ("Name", "Server ID", "Group", "IPv4", "State"):
        table.add_column(column)
    for inst in instances:
        # A failed server's reason, or what vfbot is waiting for on an unfinished one.
        state = inst.state.value + (f": {inst.error}" if inst.error and _noted(inst) else "")
        table.add_row(
            inst.name,
            str(inst.server_id or "-"),
            inst.group_label or "-",
            ", ".join(inst.ipv4) or "-",
            state,
        )
    return table


# The longest wait between ticks while the panel or the database fails.
_MAX_WAIT_S = 60.0


async def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    """Run the engine (no Slack): ticks every VF_POLL_INTERVAL, prints milestones, and with
    `--metrics-port` serves /metrics, /healthz and /readyz, and the panel's webhooks when
    VIRTFUSION_WEBHOOK_TOKEN is set (a hint followed at once wakes the loop). SIGTERM or Ctrl+C
    stops it in order (see `_work`); the exit code is then 0.

    Creates or upgrades the database at start. A panel or database that fails is waited for
    (one warning, then one line when it is back); a database that is not the one to use (its
    file vanished, an outdated schema) stops the worker with its cause, so it never claims
    work it cannot record.
    """
    from bot.app import webhook_receiver, worker_ops
    from bot.ops import listen

    settings = settings_of(args)
    stop = stop_signals()
    wake = asyncio.Event()
    async with open_core(settings, upgrade=True) as core:
        set_process_fields(worker_id=core.engine.worker_id)
        json_logs = settings.log_format == "json"
        consumer = _cli_consumer(core, out, quiet=json_logs)
        ops = worker_ops(core, (CLI_SUBSCRIBER,))
        hooks = webhook_receiver(core, ops, wake.set)
        runner = None
        if args.metrics_port is not None:
            routes = [*ops.routes(), *hooks.routes()]
            runner, port = await listen(routes, settings.vf_bind, args.metrics_port)
            served = (
                "metrics, health and POST /virtfusion/webhook"
                if hooks.enabled
                else ("metrics and health")
            )
            logger.info("%s on %s:%d", served, settings.vf_bind, port)
        elif hooks.enabled:
            logger.warning(
                "VIRTFUSION_WEBHOOK_TOKEN is set but this worker has no --metrics-port, so it "
                "receives no webhooks; it polls every VF_POLL_INTERVAL."
            )
        await ops.start()
        started = f"vfbot worker {core.engine.worker_id} started; SIGTERM or Ctrl+C stops it."
        if json_logs:  # stdout stays free of anything but JSON
            logger.info("%s", started)
        else:
            out.print(started, markup=False)
        pause = functools.partial(_pause, stop, wake=wake)
        try:
            return await _work(core, ops, consumer, stop, until_idle=args.until_idle, pause=pause)
        finally:
            ops.stopping()
            await hooks.stop()
            if runner is not None:
                await runner.cleanup()
            await ops.stop()


async def _work(
    core: Core,
    ops: Ops,
    consumer: OutboxConsumer,
    stop: asyncio.Event,
    *,
    until_idle: bool,
    pause: Sleep | None = None,
    forget: Callable[[], Awaitable[int]] | None = None,
) -> int:
    """Tick until `stop` (or, with `until_idle`, until no work is left and every event is
    printed). A tick that did work is followed by the next at once; a panel or database
    failure is logged once and waited out (`Supervisor`). On `stop`: claim no more, let the
    tick in flight finish within VF_SHUTDOWN_TIMEOUT (cut short after it), then hand back the
    rows still leased so another worker takes them at once. `forget` (the webhook deliveries
    already handled, older than a day) runs at most once an hour."""
    from bot.app import timed_tick
    from bot.scheduler import Supervisor, finish_or_cut

    settings = core.settings
    wait = pause or (lambda seconds: _pause(stop, seconds))
    supervisor = Supervisor("the worker", sleep=wait, max_s=_MAX_WAIT_S)  # logs, once

    forget_at = core.clock()

    async def one_pass() -> tuple[TickReport, bool]:
        nonlocal forget_at
        report = await timed_tick(core, ops)
        if forget is not None and core.clock() >= forget_at:
            await forget()
            forget_at = core.clock() + timedelta(hours=1)
        await core.servers.rebuilds.track_due()  # rebuilds too, e.g. a CLI one cut short
        await consumer.drain()
        # Idle once no work is left and every event is printed (one leased by a worker that
        # died comes free when its lease runs out: a few seconds).
        idle = until_idle and not await core.requests.has_work()
        return report, idle and not await consumer.pending()

    while not stop.is_set():
        tick = asyncio.ensure_future(supervisor.run(one_pass))
        finished, _ = await until_stopped(asyncio.shield(tick), stop)
        if not finished:
            logger.info(
                "stopping (finishing the tick in flight, at most %g s)",
                settings.vf_shutdown_timeout,
            )
            core.engine.stop_claiming()
            consumer.stop()
            await finish_or_cut({tick: "engine tick"}, timeout_s=settings.vf_shutdown_timeout - 3)
            break
        done = tick.result()
        if done is None:
            continue  # the supervisor said why and waited
        report, idle = done
        if idle:
            return EXIT_OK
        if not report.busy:
            await wait(settings.vf_poll_interval)
    released = await core.engine.release_held()
    logger.info("vfbot worker stopped (%d row(s) handed back)", released)
    return EXIT_OK


async def _pause(stop: asyncio.Event, seconds: float, *, wake: asyncio.Event | None = None) -> None:
    """Wait `seconds`, or less when `stop` is set meanwhile, or `wake` (a webhook followed: its
    milestones are to print and the next step may be due)."""
    events = [stop] if wake is None else [stop, wake]
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if wake is not None:
        wake.clear()


async def cmd_requests(args: argparse.Namespace, out: Console) -> int:
    """The most recent requests, newest first."""
    async with open_core(settings_of(args)) as core:
        records = await core.requests.recent(limit=args.limit)
    table = Table(title="Recent requests")
    for column in ("ID", "Project", "Requester", "State", "Created"):
        table.add_column(column)
    for r in records:
        table.add_row(
            r.human_id,
            r.project_name,
            r.requester,
            r.state.value,
            f"{r.created_at:%Y-%m-%d %H:%M} UTC",
        )
    out.print(table)
    return EXIT_OK


async def cmd_status(args: argparse.Namespace, out: Console) -> int:
    """One request (VF-n), its servers and who decided it."""
    request_id = _request_id(args.request)
    async with open_core(settings_of(args)) as core:
        record, instances = await core.requests.get(request_id)
    out.print(_servers_table(record, instances))
    if record.decided_by:
        out.print(
            f"Decided by {record.decided_by}"
            + (f": {record.decision_note}" if record.decision_note else ""),
            markup=False,
        )
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace, out: Console) -> int:
    """Stop a request: nothing new is created; --delete also deletes its servers."""
    request_id = _request_id(args.request)
    async with open_core(settings_of(args)) as core:
        record = await core.requests.cancel(request_id, actor=actor(), delete_servers=args.delete)
    what = "deleted" if args.delete else "kept (delete them with --delete or in the panel)"
    when = (
        "cancelled"
        if record.state is RequestState.CANCELLED
        else "cancelling (a running worker finishes it)"
    )
    out.print(
        f"{record.human_id}: {when}; nothing new will be created. Servers that exist are {what}.",
        markup=False,
    )
    return EXIT_OK


def add_parsers(add_parser: AddParser) -> None:
    """Add `create`, `requests`, `status`, `cancel` and `worker` to `vfbot`'s sub-commands."""
    create = add_parser("create", help="create servers from a request JSON file")
    create.add_argument("-f", "--file", required=True, help="request file (- for stdin)")
    create.add_argument("--dry-run", action="store_true", help="plan and validate, create nothing")
    create.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    create.add_argument("--wait", action="store_true", help="run the build here until it ends")
    create.set_defaults(run=cmd_create)
    requests = add_parser("requests", help="recent requests")
    requests.add_argument("--limit", type=int, default=20)
    requests.set_defaults(run=cmd_requests)
    status = add_parser("status", help="one request (VF-n) and its servers")
    status.add_argument("request", help="request id, e.g. VF-12")
    status.set_defaults(run=cmd_status)
    cancel = add_parser("cancel", help="stop a request: nothing new is created")
    cancel.add_argument("request", help="request id, e.g. VF-12")
    cancel.add_argument("--delete", action="store_true", help="also delete its servers")
    cancel.set_defaults(run=cmd_cancel)
    worker = add_parser("worker", help="run the provisioning engine without Slack")
    worker.add_argument("--until-idle", action="store_true", help="exit when no work is left")
    worker.add_argument(
        "--metrics-port",
        type=int,
        metavar="N",
        help="serve /metrics, /healthz, /readyz and, with VIRTFUSION_WEBHOOK_TOKEN, "
        "POST /virtfusion/webhook on this port (on VF_BIND; 0: any free port)",
    )
    worker.set_defaults(run=cmd_worker)
