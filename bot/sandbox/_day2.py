"""The fake panel's day-2 endpoints: rename, package and memory/CPU changes, root password reset,
firewall, IPv4 addresses and backups, in the shapes of the spec's examples.

Where the spec is silent the choices are listed in docs/virtfusion-api.md ("The sandbox"):
validation messages follow Laravel's wording, memory and CPU changes wait for a restart (a
pending action like the create example's "Create HDD"), and the firewall's `rules[]` items,
whose shape the spec never shows, are small objects made up here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from aiohttp import web

from bot.sandbox._models import COMPLETE, Ipv4Assignment, PendingChange, Server
from bot.sandbox._render import JsonObject, iso
from bot.sandbox._state import PanelState, ValidationError
from bot.sandbox._validate import _Fields
from bot.sandbox.panel import (
    _body,
    _bool_query,
    _changed,
    _empty,
    _errors,
    _int_param,
    _json,
    _msg,
    _server,
    _state,
    _unlocked_server,
)

__all__ = ["RULESET_RULES", "day2_routes"]

# What each seeded ruleset holds, for `GET .../firewall/{interface}` (item shape UNKNOWN).
RULESET_RULES: dict[int, list[JsonObject]] = {
    1: [{"direction": "in", "action": "accept", "protocol": "tcp", "port": "22"}],
    2: [
        {"direction": "in", "action": "accept", "protocol": "tcp", "port": "80"},
        {"direction": "in", "action": "accept", "protocol": "tcp", "port": "443"},
    ],
    3: [{"direction": "in", "action": "accept", "protocol": "icmp", "port": None}],
}
_RESTART = ("restart", "shutdown", "poweroff")  # `requires` of a change held for a restart
_NO_SECONDARY = "The server has no secondary interface."
_MIN_MEMORY_MB = 256


def _validated(body: object, read: Callable[[_Fields], None]) -> None:
    """Run `read` over the body's fields; 422 with every message when any is wrong."""
    fields = _Fields(body)
    read(fields)
    try:
        fields.raise_if_any()
    except ValidationError as exc:
        raise _errors(exc.messages) from exc


def _interface(value: object, errors: list[str]) -> None:
    """Check an interface like the spec's enum; only the primary one exists here."""
    if value is None:
        errors.append("The interface field is required.")
    elif value not in ("primary", "secondary"):
        errors.append("The selected interface is invalid.")
    elif value == "secondary":
        errors.append(_NO_SECONDARY)


def _path_interface(request: web.Request) -> None:
    errors: list[str] = []
    _interface(request.match_info["interface"], errors)
    if errors:
        raise _errors(errors)


def _hold_for_restart(state: PanelState, server: Server, action: str) -> None:
    server.pending.append(PendingChange(action, _RESTART, state.now()))
    server.updated = state.now()


def _check_room(state: PanelState, server: Server, *, memory_mb: int, cores: int) -> None:
    """422 when the server's hypervisor cannot hold the new size."""
    hypervisor = state.hypervisors[server.hypervisor_id]
    usage = state.usage(hypervisor)
    if usage.memory_mb - server.memory_mb + memory_mb > hypervisor.max_memory_mb:
        raise _errors([f"The hypervisor does not have {memory_mb} MB of memory free."])
    if usage.cpu_cores - server.cpu_cores + cores > hypervisor.max_cpu:
        raise _errors([f"The hypervisor does not have {cores} CPU cores free."])


async def _rename(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    body = await _body(request)

    def read(f: _Fields) -> None:
        if f.str_("name") is None and not f.errors:
            f.errors.append("The name field is required.")

    _validated(body, read)
    server.name = str(body["name"]) if isinstance(body, dict) else server.name
    return _changed(state, server)  # no body documented


async def _change_package(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    package = state.packages.get(_int_param(request, "package"))
    if package is None:
        raise _msg(404, "package not found")
    flags: dict[str, bool] = {}
    body = await _body(request)

    def read(f: _Fields) -> None:
        for name in f.body:
            value = f.bool_(name)
            if value is not None:
                flags[name] = value

    _validated(body, read)
    memory = package.memory_mb if flags.get("memory") else server.memory_mb
    cores = package.cpu_cores if flags.get("cpu") else server.cpu_cores
    _check_room(state, server, memory_mb=memory, cores=cores)
    same = "not updated. It matches the current value"
    info: list[str] = []
    for flag, field, value, words, pending in (
        ("cpu", "cpu_cores", cores, "CPU cores", f"CPU cores ({cores})"),
        ("memory", "memory_mb", memory, "memory", f"Memory ({memory} MB)"),
    ):
        if flags.get(flag):
            if getattr(server, field) == value:
                info.append(f"{words} {same}")
            else:
                setattr(server, field, value)
                _hold_for_restart(state, server, pending)
    if flags.get("primaryDiskSize"):
        if package.storage_gb <= server.storage_gb:
            info.append(
                "primary disk not updated. It either matches or is lower than the current value"
            )
        else:
            server.storage_gb = package.storage_gb
    if flags.get("primaryNetworkTraffic"):
        if package.traffic_gb == server.traffic_gb:
            info.append(f"traffic {same}")
        server.traffic_gb = package.traffic_gb
    for flag, field, value, words in (
        ("primaryNetworkInboundSpeed", "network_speed_in", package.network_speed_in, "inbound"),
        ("primaryNetworkOutboundSpeed", "network_speed_out", package.network_speed_out, "outbound"),
    ):
        if flags.get(flag):
            if getattr(server, field) == value:
                info.append(f"primary network speed {words} {same}")
            setattr(server, field, value)
    if flags.get("backupPlan"):
        if server.backup_plan_id == package.backup_plan_id:
            info.append(f"backup plan {same}")
        server.backup_plan_id = package.backup_plan_id
    # The sandbox keeps no disk IOPS or throughput limits, so these always "match".
    for flag, words in (
        ("primaryDiskReadIOPS", "read IOPS"),
        ("primaryDiskReadThroughput", "read bytes/sec"),
        ("primaryDiskWriteIOPS", "write IOPS"),
        ("primaryDiskWriteThroughput", "write bytes/sec"),
    ):
        if flags.get(flag):
            info.append(f"{words} {same}")
    server.package_id = package.id
    server.updated = state.now()
    return _json({"info": info})


async def _modify_size(request: web.Request, field: str) -> web.Response:
    """`modify/memory` (`memory`, MB) or `modify/cpuCores` (`cores`): held for a restart."""
    state, server = _unlocked_server(request)
    minimum = _MIN_MEMORY_MB if field == "memory" else 1
    values: list[int] = []

    def read(f: _Fields) -> None:
        value = f.int_(field, required=True, minimum=minimum)
        if value is not None:
            values.append(value)

    _validated(await _body(request), read)
    memory = values[0] if field == "memory" else server.memory_mb
    cores = values[0] if field == "cores" else server.cpu_cores
    _check_room(state, server, memory_mb=memory, cores=cores)
    if (memory, cores) != (server.memory_mb, server.cpu_cores):
        server.memory_mb, server.cpu_cores = memory, cores
        what = f"Memory ({memory} MB)" if field == "memory" else f"CPU cores ({cores})"
        _hold_for_restart(state, server, what)
    return _empty(201)


async def _modify_memory(request: web.Request) -> web.Response:
    return await _modify_size(request, "memory")


async def _modify_cpu_cores(request: web.Request) -> web.Response:
    return await _modify_size(request, "cores")


async def _reset_password(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    send_mail: list[bool] = []

    def read(f: _Fields) -> None:
        user = f.str_("user")
        if user is None and not f.errors:
            f.errors.append("The user field is required.")
        elif user is not None and user not in ("root", "Administrator"):
            f.errors.append("The selected user is invalid.")
        mail = f.bool_("sendMail")
        send_mail.append(True if mail is None else mail)  # "Optional (default true)"

    _validated(await _body(request), read)
    if server.commission_status(state.now()) != COMPLETE:
        raise _errors(["The server has not been built."])
    password = state.random_secret(20)
    task = state.queue_task(server, "reset_password")
    if send_mail[0]:
        state.password_mails.append(server.id)
    return _json({"data": {"queueId": task.id, "expectedPassword": password}})


def _rules_json(server: Server) -> list[JsonObject]:
    return [
        {"id": index, "ruleset": ruleset, **rule}
        for index, (ruleset, rule) in enumerate(
            ((rs, rule) for rs in server.firewall_rulesets for rule in RULESET_RULES.get(rs, [])),
            start=1,
        )
    ]


async def _firewall(request: web.Request) -> web.Response:
    _, server = _server(request)
    _bool_query(request, "sync")
    _path_interface(request)
    # The spec declares this answer `application/octet-stream` with JSON as its example text;
    # what the real content type is, is UNKNOWN. The sandbox sends JSON.
    return _json({"data": {"enabled": server.firewall_enabled, "rules": _rules_json(server)}})


async def _firewall_switch(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    _bool_query(request, "sync")
    _path_interface(request)
    server.firewall_enabled = request.match_info["verb"] == "enable"
    server.updated = state.now()
    return _empty(200)  # 200 with no body documented


async def _firewall_rules(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    _bool_query(request, "sync")
    _path_interface(request)
    rulesets: list[int] = []

    def read(f: _Fields) -> None:
        if f.body.get("rulesets") is None:
            f.errors.append("The rulesets field is required.")
        rulesets.extend(f.int_list("rulesets") or [])

    _validated(await _body(request), read)
    if any(r not in state.firewall_rulesets for r in rulesets):
        raise _errors(["Invalid or disabled firewall ruleset"])  # the spec's one 422 text
    server.firewall_rulesets = list(dict.fromkeys(rulesets))
    return _changed(state, server)


async def _add_ipv4(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    quantity: list[int] = []

    def read(f: _Fields) -> None:
        _interface(f.body.get("interface"), f.errors)
        value = f.int_("quantity", required=True, minimum=1)
        if value is not None:
            quantity.append(value)

    _validated(await _body(request), read)
    hypervisor = state.hypervisors[server.hypervisor_id]
    free = state.free_ipv4(hypervisor)
    if len(free) < quantity[0]:
        raise _errors([f"There are only {len(free)} free IPv4 addresses on the hypervisor."])
    pool = hypervisor.ipv4_pool
    order = max((ip.order for ip in server.ipv4), default=0)
    added = free[: quantity[0]]
    for offset, address in enumerate(added, start=1):
        server.ipv4.append(
            Ipv4Assignment(
                id=pool.block_id * 1000 + int(address.rsplit(".", 1)[1]),
                address=address,
                block_id=pool.block_id,
                order=order + offset,
            )
        )
    server.updated = state.now()
    return _json({"data": added})


async def _remove_ipv4(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    addresses: list[str] = []

    def read(f: _Fields) -> None:
        _interface(f.body.get("interface"), f.errors)
        value = f.body.get("ip")
        if value is None:
            f.errors.append("The ip field is required.")
        elif not isinstance(value, list) or not value:
            f.errors.append("The ip field must be an array.")
        else:
            for index, item in enumerate(value):
                if not isinstance(item, str) or not _is_ipv4(item):
                    f.errors.append(f"The ip.{index} field must be a valid IPv4 address.")
                else:
                    addresses.append(item)

    _validated(await _body(request), read)
    assigned = {ip.address for ip in server.ipv4}
    missing = [a for a in addresses if a not in assigned]
    if missing:
        raise _errors([f"The IP address {a} is not assigned to this server." for a in missing])
    server.ipv4 = [ip for ip in server.ipv4 if ip.address not in addresses]
    server.updated = state.now()
    return _empty(204)


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


async def _backups(request: web.Request) -> web.Response:
    state = _state(request)
    server_id = _int_param(request, "id")
    if server_id not in state.servers:
        raise _msg(404, "server not found")
    rows = [
        {
            "id": b.id,
            "serverId": b.server_id,
            "storage": {"id": b.storage_id, "name": b.storage_name, "enabled": True},
            "deleting": False,
            "restoring": False,
            "progress": not b.complete,
            "complete": b.complete,
            "deleteAfter": None,
            "created": iso(b.created),
            "updated": iso(b.created),
        }
        for b in state.backups
        if b.server_id == server_id
    ]
    return _json({"data": rows})


def day2_routes(api: str) -> list[web.RouteDef]:
    """The day-2 routes under `api` (the `/api/v1` prefix)."""
    server = api + r"/servers/{id:\d+}"
    firewall = server + "/firewall/{interface}"
    return [
        web.put(server + "/modify/name", _rename),
        web.put(server + r"/package/{package:\d+}", _change_package),
        web.put(server + "/modify/memory", _modify_memory),
        web.put(server + "/modify/cpuCores", _modify_cpu_cores),
        web.post(server + "/resetPassword", _reset_password),
        web.get(firewall, _firewall),
        web.post(firewall + "/{verb:(enable|disable)}", _firewall_switch),
        web.post(firewall + "/rules", _firewall_rules),
        web.post(server + "/ipv4Qty", _add_ipv4),
        web.delete(server + "/ipv4", _remove_ipv4),
        web.get(api + r"/backups/server/{id:\d+}", _backups),
    ]
