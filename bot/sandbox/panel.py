"""The fake VirtFusion panel over aiohttp.web: routes, auth, faults and serving on loopback only."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import math
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Protocol, TypeVar

from aiohttp import web

from bot.sandbox import _render as render
from bot.sandbox._hooks import HOOKS_KEY, WebhookSender, admin_routes
from bot.sandbox._models import COMPLETE, Server
from bot.sandbox._render import JsonObject
from bot.sandbox._state import (
    CommitThenFail,
    LoggedRequest,
    PanelState,
    ScriptedFault,
    ValidationError,
)
from bot.sandbox._validate import parse_build, parse_create, parse_ssh_key

__all__ = ["SandboxServer", "create_app", "running_sandbox", "serve"]

API_PREFIX = "/api/v1"
ADMIN_PREFIX = "/_sandbox"
MAX_DELETE_DELAY_MIN = 43800

STATE_KEY = web.AppKey("vfbot_sandbox_state", PanelState)
_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_NGINX_HTML = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


class _Reply(Exception):
    """Raised by handlers to answer early with a finished response."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json(payload: object, status: int = 200) -> web.Response:
    return web.json_response(payload, status=status)


def _msg(status: int, message: str) -> _Reply:
    """Older endpoints answer `{"msg": ...}` (404 "server not found", 423)."""
    return _Reply(_json({"msg": message}, status))


def _errors(messages: list[str]) -> _Reply:
    return _Reply(_json({"errors": messages}, 422))


def _empty(status: int) -> web.Response:
    return web.Response(status=status)


def _state(request: web.Request) -> PanelState:
    return request.app[STATE_KEY]


def _int_param(request: web.Request, name: str) -> int:
    # Routes only match digits, so this cannot fail.
    return int(request.match_info[name])


def _found(rows: Mapping[int, _T], request: web.Request, what: str) -> _T:
    """The row the route's `id` names, or a 404 `<what> not found`."""
    row = rows.get(_int_param(request, "id"))
    if row is None:
        raise _msg(404, f"{what} not found")
    return row


async def _body(request: web.Request) -> object:
    """The parsed JSON body; malformed or empty JSON reads as an empty form, as in Laravel."""
    raw = await request.read()
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def _bool_query(request: web.Request, name: str) -> bool:
    value = request.query.get(name, "false").lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false", ""):
        return False
    raise _errors([f"The {name} field must be true or false."])


# -- fault responses --------------------------------------------------------------------------


def _fault_response(kind: str, state: PanelState, retry_after_s: int | None = None) -> web.Response:
    """A canned failure like the real stack would send (Laravel JSON or nginx HTML)."""
    if kind == "401":
        return _empty(401)
    if kind == "403":
        return _json({"msg": "This action is unauthorized."}, 403)
    if kind == "409":
        return _json({"msg": "The request conflicts with the current state of the server."}, 409)
    if kind == "423":
        return _json({"msg": "The server is locked while a task is running."}, 423)
    if kind == "429":
        retry = state.faults.retry_after_s if retry_after_s is None else retry_after_s
        return web.json_response(
            {"message": "Too Many Attempts."},
            status=429,
            headers={
                "Retry-After": str(retry),
                "X-RateLimit-Limit": "60",
                "X-RateLimit-Remaining": "0",
            },
        )
    if kind == "500":
        return _json({"message": "Server Error"}, 500)
    if kind == "503":
        return _json({"message": "Service Unavailable"}, 503)
    reason = {"502": "Bad Gateway", "504": "Gateway Time-out"}[kind]
    return web.Response(
        status=int(kind),
        text=_NGINX_HTML.format(status=kind, reason=reason),
        content_type="text/html",
    )


def _drop(request: web.Request) -> web.Response:
    """Close the connection without answering; the client sees a server disconnect."""
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp fails to write this to the closed transport and ignores that quietly.
    return _empty(500)


# -- middlewares ------------------------------------------------------------------------------


def _api_path(path: str) -> str:
    if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
        return path[len(API_PREFIX) :] or "/"
    return path


@web.middleware
async def _faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Log every non-admin request and inject latency, scripted and probabilistic faults."""
    if request.path.startswith(ADMIN_PREFIX + "/"):
        return await handler(request)
    state = _state(request)
    api_path = _api_path(request.path)
    raw = await request.read()
    body: object = None
    if raw:
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    entry = LoggedRequest(
        method=request.method,
        path=request.path,
        api_path=api_path,
        query=dict(request.query),
        body=body,
        at=state.now(),
    )
    state.log.append(entry)
    if not (request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")):
        response = await handler(request)
        entry.status = response.status
        return response

    faults = state.faults
    if faults.latency_s > 0:
        await asyncio.sleep(faults.latency_s)
    scripted = faults.take_scripted(request.method, api_path)
    pre = _pre_fault(state, scripted)
    if pre is not None:
        entry.fault = pre
        if pre == "drop":
            return _drop(request)
        if pre == "hang":
            await asyncio.sleep(faults.hang_s)
        else:
            response = _fault_response(pre, state, scripted.retry_after_s if scripted else None)
            entry.status = response.status
            return response

    response = await handler(request)
    post = _post_fault(request, api_path, response.status, scripted, state)
    if post != "off":
        entry.fault = f"commit_then_{post}"
        if post == "drop":
            return _drop(request)
        if post == "hang":
            await asyncio.sleep(faults.hang_s)
        else:
            response = _fault_response("500", state)
    entry.status = response.status
    return response


def _pre_fault(state: PanelState, scripted: ScriptedFault | None) -> str | None:
    """The fault to inject before the handler runs, if any; draws the RNG in a fixed order."""
    if scripted is not None:
        return None if scripted.kind.startswith("commit_then_") else scripted.kind
    faults, rng = state.faults, state.rng
    for kind, ratio in (
        ("drop", faults.drop_ratio),
        ("hang", faults.hang_ratio),
        ("429", faults.rate_limit_ratio),
    ):
        if ratio > 0 and rng.random() < ratio:
            return kind
    if faults.server_error_ratio > 0 and rng.random() < faults.server_error_ratio:
        return rng.choice(("500", "502", "503"))
    return None


def _post_fault(
    request: web.Request,
    api_path: str,
    status: int,
    scripted: ScriptedFault | None,
    state: PanelState,
) -> CommitThenFail:
    """After a committed success: which failure replaces the response ("off" = none)."""
    if status >= 300:
        return "off"
    if scripted is not None:
        if scripted.kind == "commit_then_500":
            return "500"
        if scripted.kind == "commit_then_hang":
            return "hang"
        if scripted.kind == "commit_then_drop":
            return "drop"
        return "off"
    if request.method == "POST" and api_path == "/servers" and status == 201:
        return state.faults.take_commit_then_fail()
    return "off"


@web.middleware
async def _panel_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Route errors, Bearer auth, token scopes and clock-driven bookkeeping, like the panel."""
    if request.path.startswith(ADMIN_PREFIX + "/"):
        return await handler(request)
    state = _state(request)
    route_error = request.match_info.http_exception
    route = request.path.lstrip("/")
    if isinstance(route_error, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(route_error.allowed_methods))
        message = (
            f"The {request.method} method is not supported for route {route}. "
            f"Supported methods: {allowed}."
        )
        return _json({"message": message}, 405)
    if route_error is not None:
        return _json({"message": f"The route {route} could not be found."}, 404)
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        token.strip().encode(), state.token.encode()
    ):
        return _empty(401)  # 401 has no body (reference §1.4)
    scope = _api_path(request.path).strip("/").split("/", 1)[0]
    if state.token_scopes is not None and scope != "connect" and scope not in state.token_scopes:
        return _json({"msg": "This action is unauthorized."}, 403)
    state.settle()
    try:
        return await handler(request)
    except _Reply as reply:
        return reply.response


# -- pagination --------------------------------------------------------------------------------


def _paginate(request: web.Request, rows: list[JsonObject]) -> JsonObject:
    """Laravel's LengthAwarePaginator envelope; page URLs carry only `page`, as Laravel's do."""
    errors: list[str] = []
    per_page, page = 20, 1
    raw_results = request.query.get("results")
    if raw_results is not None:
        if not re.fullmatch(r"\d+", raw_results):
            errors.append("The results field must be an integer.")
        elif not 1 <= int(raw_results) <= 200:
            errors.append("The results field must be between 1 and 200.")
        else:
            per_page = int(raw_results)
    raw_page = request.query.get("page")
    if raw_page is not None:
        if not re.fullmatch(r"\d+", raw_page) or int(raw_page) < 1:
            errors.append("The page field must be at least 1.")
        else:
            page = int(raw_page)
    if errors:
        raise _errors(errors)
    total = len(rows)
    last_page = max(1, math.ceil(total / per_page))
    chunk = rows[(page - 1) * per_page : page * per_page]
    path = str(request.url.with_query(None))

    def url(number: int) -> str:
        return f"{path}?page={number}"

    prev_url = url(page - 1) if page > 1 else None
    next_url = url(page + 1) if page < last_page else None
    links: list[JsonObject] = [{"url": prev_url, "label": "&laquo; Previous", "active": False}]
    links += [
        {"url": url(n), "label": str(n), "active": n == page} for n in range(1, last_page + 1)
    ]
    links.append({"url": next_url, "label": "Next &raquo;", "active": False})
    first = (page - 1) * per_page + 1
    return {
        "current_page": page,
        "data": chunk,
        "first_page_url": url(1),
        "from": first if chunk else None,
        "last_page": last_page,
        "last_page_url": url(last_page),
        "links": links,
        "next_page_url": next_url,
        "path": path,
        "per_page": per_page,
        "prev_page_url": prev_url,
        "to": first + len(chunk) - 1 if chunk else None,
        "total": total,
    }


# -- handlers: connect, compute, catalogue ---------------------------------------------------


async def _connect(request: web.Request) -> web.Response:
    # The spec's example body is `[]`; what a real panel puts there is UNKNOWN.
    return _json([])


async def _hypervisors(request: web.Request) -> web.Response:
    state = _state(request)
    rows = [render.hypervisor_json(state, h) for _, h in sorted(state.hypervisors.items())]
    return _json(_paginate(request, rows))


async def _hypervisor(request: web.Request) -> web.Response:
    state = _state(request)
    hypervisor = _found(state.hypervisors, request, "hypervisor")
    return _json({"data": render.hypervisor_json(state, hypervisor)})


async def _groups(request: web.Request) -> web.Response:
    state = _state(request)
    rows = [render.group_json(g) for _, g in sorted(state.groups.items())]
    return _json(_paginate(request, rows))


async def _group(request: web.Request) -> web.Response:
    group = _found(_state(request).groups, request, "hypervisor group")
    return _json({"data": render.group_json(group)})


async def _group_resources(request: web.Request) -> web.Response:
    state = _state(request)
    group = _found(state.groups, request, "hypervisor group")
    rows = [render.group_resources_row(state, h) for h in state.group_hypervisors(group.id)]
    return _json(_paginate(request, rows))


async def _packages(request: web.Request) -> web.Response:
    state = _state(request)
    return _json({"data": [render.package_json(p) for _, p in sorted(state.packages.items())]})


async def _package(request: web.Request) -> web.Response:
    package = _found(_state(request).packages, request, "package")
    return _json({"data": render.package_json(package)})


async def _package_templates(request: web.Request) -> web.Response:
    state = _state(request)
    package = _found(state.packages, request, "package")
    return _json({"data": render.template_groups_json(state, package.template_ids)})


async def _user_ssh_keys(request: web.Request) -> web.Response:
    state = _state(request)
    user_id = _found(state.users, request, "user").id
    keys = [k for _, k in sorted(state.ssh_keys.items()) if k.user_id == user_id]
    return _json({"data": [render.ssh_key_json(k) for k in keys]})


async def _ssh_key(request: web.Request) -> web.Response:
    key = _found(_state(request).ssh_keys, request, "ssh key")
    return _json({"data": render.ssh_key_json(key)})


async def _delete_ssh_key(request: web.Request) -> web.Response:
    state = _state(request)
    if state.ssh_keys.pop(_int_param(request, "id"), None) is None:
        raise _msg(404, "ssh key not found")
    return _empty(204)


async def _add_ssh_key(request: web.Request) -> web.Response:
    state = _state(request)
    try:
        user, name, public_key = parse_ssh_key(state, await _body(request))
    except ValidationError as exc:
        raise _errors(exc.messages) from exc
    key = state.add_ssh_key(user, name, public_key)
    data = {"id": key.id, "name": key.name, "type": key.type, "createdAt": render.iso(key.created)}
    return _json({"data": data}, 201)


async def _user_by_ext(request: web.Request) -> web.Response:
    state = _state(request)
    key = request.match_info["ext"]
    by_rel_str = _bool_query(request, "relStr")
    for user in state.users.values():
        if (by_rel_str and user.rel_str == key) or (
            not by_rel_str and str(user.ext_relation_id) == key
        ):
            return _json({"data": render.user_json(user)})
    raise _msg(404, "user not found")


async def _queue_task(request: web.Request) -> web.Response:
    state = _state(request)
    task = _found(state.queue, request, "queue item")
    return _json({"data": render.queue_json(task, state.now())})


# -- handlers: servers -------------------------------------------------------------------------


def _server(request: web.Request) -> tuple[PanelState, Server]:
    state = _state(request)
    server = _found(state.servers, request, "server")
    return state, server


async def _create_server(request: web.Request) -> web.Response:
    state = _state(request)
    dry_run = _bool_query(request, "dryRun")
    try:
        spec = parse_create(state, await _body(request))
        hypervisor = state.place(spec)
    except ValidationError as exc:
        raise _errors(exc.messages) from exc
    if dry_run:
        # The dry-run body is UNKNOWN (reference §2.4); integrations only look at the status.
        return _json({"data": {"dryRun": True, "valid": True}})
    server = state.create_server(spec, hypervisor)
    return _json({"data": render.server_json(state, server)}, 201)


async def _list_servers(request: web.Request) -> web.Response:
    state = _state(request)
    kind = request.query.get("type", "simple")
    if kind not in ("simple", "full"):
        raise _errors(["The selected type is invalid."])
    wanted: set[int] = set()
    for raw in request.query.getall("hypervisorId", []) + request.query.getall(
        "hypervisorId[]", []
    ):
        if not re.fullmatch(r"\d+", raw):
            raise _errors(["The hypervisor id field must be an integer."])
        wanted.add(int(raw))
    servers = [
        s for _, s in sorted(state.servers.items()) if not wanted or s.hypervisor_id in wanted
    ]
    now = state.now()
    rows = [
        render.server_json(state, s) if kind == "full" else render.server_simple_json(s, now)
        for s in servers
    ]
    return _json(_paginate(request, rows))


async def _user_servers(request: web.Request) -> web.Response:
    state = _state(request)
    user_id = _found(state.users, request, "user").id
    servers = [s for _, s in sorted(state.servers.items()) if s.owner_id == user_id]
    return _json({"data": [render.server_user_row_json(state, s) for s in servers]})


async def _get_server(request: web.Request) -> web.Response:
    state, server = _server(request)
    _bool_query(request, "remoteState")  # validated like the panel's, but changes nothing
    return _json({"data": render.server_json(state, server)})


async def _delete_server(request: web.Request) -> web.Response:
    state, server = _server(request)
    raw = request.query.get("delay", "0")
    if not re.fullmatch(r"\d+", raw) or int(raw) > MAX_DELETE_DELAY_MIN:
        raise _errors([f"The delay field must be between 0 and {MAX_DELETE_DELAY_MIN}."])
    state.delete_server(server, int(raw))
    return _empty(204)


async def _build_server(request: web.Request) -> web.Response:
    """Build, or rebuild: the spec's example builds a server built months before and answers
    200 (queued, the old `built` kept). Only a server with a task running refuses (423)."""
    state, server = _server(request)
    if state.locked(server):
        raise _msg(423, "The server is locked while a task is running.")
    try:
        spec = parse_build(state, server, await _body(request))
    except ValidationError as exc:
        raise _errors(exc.messages) from exc
    password = state.start_build(server, spec)
    data = render.server_json(state, server)
    settings = data["settings"]
    if isinstance(settings, dict):
        # Only the build response carries the root password (reference §2.5).
        settings["decryptedPassword"] = password
    return _json({"data": data})


async def _server_templates(request: web.Request) -> web.Response:
    state, server = _server(request)
    package = state.packages.get(server.package_id)
    template_ids = package.template_ids if package is not None else []
    return _json({"data": render.template_groups_json(state, template_ids)})


def _unlocked_server(request: web.Request) -> tuple[PanelState, Server]:
    state, server = _server(request)
    if state.locked(server):
        raise _msg(423, "The server is locked while a task is running.")
    return state, server


async def _suspend(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    server.suspended = True
    server.updated = state.now()
    return _empty(204)


async def _unsuspend(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    server.suspended = False
    server.updated = state.now()
    return _empty(204)


async def _power(request: web.Request) -> web.Response:
    state, server = _unlocked_server(request)
    action = request.match_info["action"]
    now = state.now()
    error: str | None = None
    if server.commission_status(now) != COMPLETE:
        error = "The server has not been built."
    elif server.suspended and action in ("boot", "restart"):
        error = "The server is suspended."
    task = state.queue_task(server, action, error)
    return _json({"data": {"queueId": task.id}})


def _changed(state: PanelState, server: Server) -> web.Response:
    """A settings change was made: the server's `updated` moves; 201, whose body is UNKNOWN
    (reference §2.15), so clients must not need one."""
    server.updated = state.now()
    return _empty(201)


def _server_and_choice(
    request: web.Request, name: str, valid: Callable[[PanelState, int], bool], what: str
) -> tuple[PanelState, Server, int]:
    """The server and the id in the path's `name`, refused with 422 unless `valid`."""
    state, server = _server(request)
    chosen = _int_param(request, name)
    if not valid(state, chosen):
        raise _errors([f"The selected {what} is invalid."])
    return state, server, chosen


async def _backup_plan(request: web.Request) -> web.Response:
    state, server, plan_id = _server_and_choice(
        request, "plan", lambda state, plan: plan == 0 or plan in state.backup_plans, "backup plan"
    )
    server.backup_plan_id = plan_id
    return _changed(state, server)


async def _change_owner(request: web.Request) -> web.Response:
    state, server, owner_id = _server_and_choice(
        request, "owner", lambda state, owner: owner in state.users, "owner"
    )
    server.owner_id = owner_id
    return _changed(state, server)


async def _set_vnc(request: web.Request) -> web.Response:
    state, server = _server(request)
    body = await _body(request)
    action = body.get("action") if isinstance(body, dict) else None
    if action not in ("enable", "disable"):
        message = (
            "The action field is required." if action is None else "The selected action is invalid."
        )
        raise _errors([message])
    server.vnc_enabled = action == "enable"
    server.vnc_password = state.random_secret(12) if server.vnc_enabled else ""
    task = state.queue_task(server, "vnc")
    vnc = render.vnc_json(state, server)
    return _json({"data": {"vnc": vnc, "queueId": task.id}})


async def _get_vnc(request: web.Request) -> web.Response:
    state, server = _server(request)
    return _json({"data": {"vnc": render.vnc_json(state, server)}})


async def _traffic(request: web.Request) -> web.Response:
    state, server = _server(request)
    return _json({"data": render.traffic_json(server, state.now())})


async def _cpu_throttle(request: web.Request) -> web.Response:
    state, server = _server(request)
    _bool_query(request, "sync")
    body = await _body(request)
    percent = body.get("percent") if isinstance(body, dict) else None
    if percent is None:
        raise _errors(["The percent field is required."])
    if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 99:
        raise _errors(["The percent field must be an integer between 0 and 99."])
    server.cpu_throttle = percent
    return _changed(state, server)


# -- admin endpoints (no auth, no faults, not logged) -------------------------------------------


async def _admin_log(request: web.Request) -> web.Response:
    return _json([entry.to_json() for entry in _state(request).log])


async def _admin_reset_log(request: web.Request) -> web.Response:
    _state(request).reset_log()
    return _empty(204)


class _Knobs(Protocol):
    def update(self, values: Mapping[str, object]) -> None: ...
    def to_json(self) -> dict[str, object]: ...


async def _admin_knobs(request: web.Request, knobs: _Knobs, what: str) -> web.Response:
    """GET shows the knobs; POST first sets them from a JSON object (400 when a field is bad)."""
    if request.method == "POST":
        body = await _body(request)
        try:
            if not isinstance(body, dict):
                raise ValueError(f"the body must be a JSON object of {what} fields")
            knobs.update(body)
        except ValueError as exc:
            return _json({"errors": [str(exc)]}, 400)
    return _json(knobs.to_json())


async def _admin_faults(request: web.Request) -> web.Response:
    return await _admin_knobs(request, _state(request).faults, "fault")


async def _admin_timing(request: web.Request) -> web.Response:
    return await _admin_knobs(request, _state(request).timing, "timing")


# -- app and serving -----------------------------------------------------------------------------


def create_app(state: PanelState) -> web.Application:
    """Build the fake panel application around `state`."""
    from bot.sandbox._day2 import day2_routes  # it builds on this module's helpers

    app = web.Application(middlewares=[_faults_middleware, _panel_middleware])
    app[STATE_KEY] = state
    app[HOOKS_KEY] = WebhookSender(state)
    api = API_PREFIX
    server = api + r"/servers/{id:\d+}"
    app.router.add_routes(
        [
            web.get(api + "/connect", _connect),
            web.get(api + "/compute/hypervisors", _hypervisors),
            web.get(api + "/compute/hypervisors/groups", _groups),
            web.get(api + r"/compute/hypervisors/groups/{id:\d+}", _group),
            web.get(api + r"/compute/hypervisors/groups/{id:\d+}/resources", _group_resources),
            web.get(api + r"/compute/hypervisors/{id:\d+}", _hypervisor),
            web.get(api + "/packages", _packages),
            web.get(api + r"/packages/{id:\d+}", _package),
            web.get(api + r"/media/templates/fromServerPackageSpec/{id:\d+}", _package_templates),
            web.get(api + r"/ssh_keys/user/{id:\d+}", _user_ssh_keys),
            web.get(api + r"/ssh_keys/{id:\d+}", _ssh_key),
            web.delete(api + r"/ssh_keys/{id:\d+}", _delete_ssh_key),
            web.post(api + "/ssh_keys", _add_ssh_key),
            web.get(api + "/users/{ext}/byExtRelation", _user_by_ext),
            web.get(api + r"/queue/{id:\d+}", _queue_task),
            web.get(api + "/servers", _list_servers),
            web.post(api + "/servers", _create_server),
            web.get(api + r"/servers/user/{id:\d+}", _user_servers),
            web.get(server, _get_server),
            web.delete(server, _delete_server),
            web.post(server + "/build", _build_server),
            web.get(server + "/templates", _server_templates),
            web.post(server + "/suspend", _suspend),
            web.post(server + "/unsuspend", _unsuspend),
            web.post(server + "/power/{action:(boot|shutdown|restart|poweroff)}", _power),
            web.put(server + r"/backups/plan/{plan:\d+}", _backup_plan),
            web.put(server + r"/owner/{owner:\d+}", _change_owner),
            web.post(server + "/vnc", _set_vnc),
            web.get(server + "/vnc", _get_vnc),
            web.get(server + "/traffic", _traffic),
            web.put(server + "/modify/cpuThrottle", _cpu_throttle),
            *day2_routes(api),
            web.get(ADMIN_PREFIX + "/log", _admin_log),
            web.post(ADMIN_PREFIX + "/reset-log", _admin_reset_log),
            web.get(ADMIN_PREFIX + "/faults", _admin_faults),
            web.post(ADMIN_PREFIX + "/faults", _admin_faults),
            web.get(ADMIN_PREFIX + "/timing", _admin_timing),
            web.post(ADMIN_PREFIX + "/timing", _admin_timing),
            *admin_routes(ADMIN_PREFIX),
        ]
    )
    return app


@dataclass(frozen=True)
class SandboxServer:
    """A running sandbox: `url` is the base without `/api/v1`, `api_url` includes it."""

    url: str
    api_url: str
    state: PanelState
    port: int
    hooks: WebhookSender


def _check_loopback(host: str) -> None:
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}")


@asynccontextmanager
async def running_sandbox(
    state: PanelState | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    webhook_url: str | None = None,
    webhook_token: str | None = None,
) -> AsyncIterator[SandboxServer]:
    """Serve a sandbox on loopback for the block; port 0 picks a free ephemeral port. With
    `webhook_url`, the panel's webhooks go there (`hooks` configures them later too).

    Raises ValueError for a non-loopback host.
    """
    _check_loopback(host)
    panel_state = state or PanelState()
    # handler_cancellation: a client that gives up cancels a hanging handler's asyncio.sleep.
    app = create_app(panel_state)
    hooks = app[HOOKS_KEY]
    hooks.configure({"url": webhook_url, "token": webhook_token})
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=True,
        shutdown_timeout=0.5,
    )
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound_port = int(runner.addresses[0][1])
        url_host = f"[{host}]" if ":" in host else host
        url = f"http://{url_host}:{bound_port}"
        await hooks.start()
        yield SandboxServer(
            url=url, api_url=url + API_PREFIX, state=panel_state, port=bound_port, hooks=hooks
        )
    finally:
        await hooks.close()
        await runner.cleanup()


async def serve(
    host: str,
    port: int,
    state: PanelState,
    *,
    webhook_url: str | None = None,
    webhook_token: str | None = None,
) -> None:
    """Serve the sandbox until cancelled (the `vfbot sandbox` command)."""
    async with running_sandbox(
        state, host, port, webhook_url=webhook_url, webhook_token=webhook_token
    ):
        await asyncio.Event().wait()
