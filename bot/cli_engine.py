"""CLI commands that drive the provisioning engine: create, worker, requests, status, cancel."""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from bot.app import Engine, open_engine, request_limits
from bot.config import Settings
from bot.provisioning import events
from bot.provisioning.errors import AlreadyDecidedError, PlanError, UnknownRequestError
from bot.provisioning.outbox import OutboxConsumer
from bot.provisioning.plan import render_plan_text
from bot.provisioning.request import RequestError, parse_request
from bot.store import (
    TERMINAL_REQUEST_STATES,
    EventRecord,
    InstanceRecord,
    InstanceState,
    RequestRecord,
    RequestState,
    parse_human_id,
)
from bot.virtfusion import VirtFusionError

__all__ = ["cmd_cancel", "cmd_create", "cmd_requests", "cmd_status", "cmd_worker", "exit_code_for"]

EXIT_OK, EXIT_FAILED, EXIT_CONFIG, EXIT_PARTIAL = 0, 1, 2, 3
CLI_SUBSCRIBER = "cli"

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


def _settings(args: argparse.Namespace) -> Settings:
    settings = args.settings
    if not isinstance(settings, Settings):
        raise TypeError("engine commands need settings")
    return settings


def _read(path: str) -> bytes:
    if path == "-":
        return sys.stdin.buffer.read()
    return Path(path).read_bytes()


def describe_event(event: EventRecord) -> str:
    """One line per outbox event, for the CLI subscriber."""
    p = event.payload
    name = p.get("name", "")
    kind = event.kind
    prefix = f"VF-{event.request_id}"
    if kind == events.INSTANCE_CREATED:
        where = (
            f"group {p.get('group')}, hypervisor {p.get('hypervisor') or p.get('hypervisor_id')}"
        )
        how = " (found on the panel after an unclear answer)" if p.get("reconciled") else ""
        return f"{prefix} {name}: created server {p.get('server_id')} in {where}{how}"
    if kind == events.INSTANCE_BUILD_STARTED:
        return f"{prefix} {name}: installing {p.get('os')} on server {p.get('server_id')}"
    if kind == events.INSTANCE_BUILT:
        ipv4 = p.get("ipv4")
        ips = ", ".join(str(ip) for ip in ipv4) if isinstance(ipv4, list) and ipv4 else "no IPv4"
        return f"{prefix} {name}: built ({ips}, {p.get('os')})"
    if kind == events.INSTANCE_FAILED:
        return f"{prefix} {name}: FAILED: {p.get('error')}"
    if kind == events.INSTANCE_DELETED:
        return f"{prefix} {name}: server {p.get('server_id')} deleted"
    if kind == events.INSTANCE_CANCELLED:
        return f"{prefix} {name}: cancelled"
    if kind == events.REQUEST_FINISHED:
        return f"{prefix}: finished: {p.get('state')}"
    return f"{prefix}: {kind.replace('.', ' ')}"


async def cmd_create(args: argparse.Namespace, out: Console) -> int:
    """Plan a request file, confirm, submit it, and optionally carry it out here."""
    settings = _settings(args)
    try:
        raw = _read(args.file)
    except OSError as error:
        out.print(f"Cannot read {args.file}: {error.strerror or error}", markup=False)
        return EXIT_CONFIG
    try:
        request = parse_request(raw, request_limits(settings))
    except RequestError as error:
        out.print(f"{args.file} is not a valid request:\n{error}", markup=False)
        return EXIT_CONFIG
    async with open_engine(settings) as engine:
        try:
            plan = await engine.planner.plan(request)
        except PlanError as error:
            out.print(str(error), markup=False)
            return EXIT_FAILED
        except VirtFusionError as error:
            out.print(f"Could not plan the request: {error}", markup=False)
            return EXIT_FAILED
        out.print(render_plan_text(plan), markup=False)
        if args.dry_run:
            out.print("Dry run: the panel accepted the plan; nothing was created.")
            return EXIT_OK
        if not args.yes:
            if not sys.stdin.isatty():
                out.print("Not confirmed (no terminal): add --yes to create these servers.")
                return EXIT_FAILED
            answer = await asyncio.to_thread(input, f"Create {len(plan.servers)} server(s)? [y/N] ")
            if answer.strip().lower() not in ("y", "yes"):
                out.print("Nothing was created.")
                return EXIT_FAILED
        record, _ = await engine.service.submit(
            key=f"cli:{uuid.uuid4()}",
            requester=f"cli:{_user()}",
            source="cli",
            request=request,
            plan=plan,
            approval_required=False,
        )
        out.print(f"Submitted {record.human_id}.")
        if not args.wait:
            out.print(
                f"A running `vfbot worker` or `vfbot serve` carries it out; follow it with "
                f"`vfbot status {record.human_id}`."
            )
            return EXIT_OK
        return await _wait(engine, record, out)


async def _wait(engine: Engine, record: RequestRecord, out: Console) -> int:
    """Run the engine here until the request ends, showing progress per server."""
    consumer = _cli_consumer(engine, out)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[state]}"),
        console=out,
        disable=not out.is_terminal,
    )
    tasks: dict[int, object] = {}
    try:
        with progress:
            while True:
                await engine.service.run_once()
                await consumer.drain()
                current, instances = await engine.service.get(record.id)
                for inst in instances:
                    if inst.id not in tasks:
                        tasks[inst.id] = progress.add_task(inst.name, total=4, state="")
                    progress.update(
                        tasks[inst.id],  # type: ignore[arg-type]
                        completed=_STEP.get(inst.state, 4),
                        state=inst.state.value,
                    )
                if current.state in TERMINAL_REQUEST_STATES:
                    break
                await asyncio.sleep(engine.settings.vf_poll_interval)
    except (KeyboardInterrupt, asyncio.CancelledError):
        out.print(
            f"\nStopped watching. {record.human_id} is saved and continues when `vfbot worker` "
            f"or `vfbot serve` runs; `vfbot status {record.human_id}` shows where it is."
        )
        raise
    await consumer.drain()
    current, instances = await engine.service.get(record.id)
    out.print(_servers_table(current, instances))
    return exit_code_for(current.state)


def _cli_consumer(engine: Engine, out: Console) -> OutboxConsumer:
    async def show(event: EventRecord) -> None:
        if event.kind in events.MILESTONES or event.kind == events.REQUEST_FINISHED:
            out.print(describe_event(event), markup=False)
            out.file.flush()  # marked delivered next: the line must not sit in a buffer

    return OutboxConsumer(
        engine.db.uow, subscriber=CLI_SUBSCRIBER, handler=show, clock=engine.clock
    )


def _servers_table(record: RequestRecord, instances: Sequence[InstanceRecord]) -> Table:
    table = Table(title=f"{record.human_id} {record.project_name}: {record.state.value}")
    for column in ("Name", "Server ID", "Group", "IPv4", "State"):
        table.add_column(column)
    for inst in instances:
        group = str(inst.spec.get("group_name") or inst.group_id or "-")
        state = inst.state.value + (
            f": {inst.error}" if inst.error and inst.state is InstanceState.FAILED else ""
        )
        table.add_row(
            inst.name,
            str(inst.server_id or "-"),
            group,
            ", ".join(inst.ipv4) or "-",
            state,
        )
    return table


async def cmd_worker(args: argparse.Namespace, out: Console) -> int:
    """Run the engine (no Slack): ticks every VF_POLL_INTERVAL, prints milestones."""
    settings = _settings(args)
    async with open_engine(settings) as engine:
        consumer = _cli_consumer(engine, out)
        out.print(
            f"vfbot worker {engine.service.worker_id} started; Ctrl+C stops it.", markup=False
        )
        while True:
            report = await engine.service.run_once()
            await consumer.drain()
            if args.until_idle and not await engine.service.has_work():
                return EXIT_OK
            if not report.busy:
                await asyncio.sleep(settings.vf_poll_interval)


async def cmd_requests(args: argparse.Namespace, out: Console) -> int:
    settings = _settings(args)
    async with open_engine(settings) as engine:
        records = await engine.service.recent(limit=args.limit)
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
    settings = _settings(args)
    request_id = parse_human_id(args.request)
    if request_id is None:
        out.print(f"{args.request!r} is not a request id; use the form VF-12.", markup=False)
        return EXIT_CONFIG
    async with open_engine(settings) as engine:
        try:
            record, instances = await engine.service.get(request_id)
        except UnknownRequestError as error:
            out.print(str(error), markup=False)
            return EXIT_FAILED
    out.print(_servers_table(record, instances))
    if record.decided_by:
        out.print(
            f"Decided by {record.decided_by}"
            + (f": {record.decision_note}" if record.decision_note else ""),
            markup=False,
        )
    return EXIT_OK


async def cmd_cancel(args: argparse.Namespace, out: Console) -> int:
    settings = _settings(args)
    request_id = parse_human_id(args.request)
    if request_id is None:
        out.print(f"{args.request!r} is not a request id; use the form VF-12.", markup=False)
        return EXIT_CONFIG
    async with open_engine(settings) as engine:
        try:
            record = await engine.service.cancel(
                request_id, actor=f"cli:{_user()}", delete_servers=args.delete
            )
        except (UnknownRequestError, AlreadyDecidedError) as error:
            out.print(str(error), markup=False)
            return EXIT_FAILED
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


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
