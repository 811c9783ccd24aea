"""Pure request building and response parsing for the VirtFusion API; no I/O, no clocks.

Paths are relative to the panel's `/api/v1`. Every endpoint builder returns an `HttpRequest`
whose `repeatable` flag says whether the retry policy may send it twice and whose `reads_body`
flag says whether vfbot reads a successful answer at all; `parse_*` turn a status, headers and
body into a model or raise from `_exceptions`. docs/virtfusion-api.md lists every endpoint here.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from bot.virtfusion._exceptions import (
    ApiError,
    AuthError,
    ConflictError,
    DecodeError,
    ForbiddenError,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelError,
    RateLimitedError,
)
from bot.virtfusion._models import (
    BuildServerBody,
    CreateServerBody,
    OsTemplate,
    Page,
    PowerAction,
    VncSession,
)

logger = logging.getLogger("bot.virtfusion")

__all__ = [
    "MAX_PAGE_SIZE",
    "HttpRequest",
    "RawResponse",
    "build_request",
    "decode_json",
    "panel_messages",
    "parse_data",
    "parse_list",
    "parse_page",
    "parse_response",
    "parse_retry_after",
    "parse_templates",
    "parse_vnc",
]

MAX_PAGE_SIZE = 200  # `results` is 1..200 on every paged endpoint (SPEC)
DELETE_DELAY_MAX_MIN = 43800

M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class HttpRequest:
    """One API call, described without sending it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    json: Mapping[str, object] | None = None
    repeatable: bool = True  # False for POST /servers and /build: never sent twice blindly
    # False where vfbot needs only the status: the spec declares many of these answers
    # `application/octet-stream` with no example, so their bodies are not parsed at all.
    reads_body: bool = True

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class RawResponse:
    """What came back: status, headers (lower-case names) and the raw body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""


def build_request(
    method: str,
    path: str,
    *,
    query: Mapping[str, object] | Sequence[tuple[str, object]] | None = None,
    json_body: Mapping[str, object] | None = None,
    repeatable: bool = True,
    reads_body: bool = True,
) -> HttpRequest:
    """Build a request, turning query values into the strings the panel expects."""
    pairs = query.items() if isinstance(query, Mapping) else (query or ())
    encoded = tuple((k, _query_value(v)) for k, v in pairs if v is not None)
    return HttpRequest(method, path, encoded, json_body, repeatable, reads_body)


def _query_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# -- endpoint builders --------------------------------------------------------------------------


def connect() -> HttpRequest:
    """`GET /connect`: the success body is undocumented (the example is `[]`); only 200 counts."""
    return build_request("GET", "/connect", reads_body=False)


def list_hypervisors(page: int, results: int = MAX_PAGE_SIZE) -> HttpRequest:
    return build_request("GET", "/compute/hypervisors", query={"results": results, "page": page})


def get_hypervisor(hypervisor_id: int) -> HttpRequest:
    return build_request("GET", f"/compute/hypervisors/{_id(hypervisor_id)}")


def list_groups(page: int, results: int = MAX_PAGE_SIZE) -> HttpRequest:
    query = {"results": results, "page": page}
    return build_request("GET", "/compute/hypervisors/groups", query=query)


def get_group(group_id: int) -> HttpRequest:
    return build_request("GET", f"/compute/hypervisors/groups/{_id(group_id)}")


def group_resources(group_id: int, page: int, results: int = MAX_PAGE_SIZE) -> HttpRequest:
    path = f"/compute/hypervisors/groups/{_id(group_id)}/resources"
    return build_request("GET", path, query={"results": results, "page": page})


def get_package(package_id: int) -> HttpRequest:
    return build_request("GET", f"/packages/{_id(package_id)}")


def package_templates(package_id: int) -> HttpRequest:
    return build_request("GET", f"/media/templates/fromServerPackageSpec/{_id(package_id)}")


def user_ssh_keys(user_id: int) -> HttpRequest:
    return build_request("GET", f"/ssh_keys/user/{_id(user_id)}")


def create_server(body: CreateServerBody, *, dry_run: bool = False) -> HttpRequest:
    """`POST /servers`; a dry run validates without creating and so may be repeated.

    Only the dry run's status matters: its success body is undocumented.
    """
    return build_request(
        "POST",
        "/servers",
        query={"dryRun": dry_run} if dry_run else None,
        json_body=body.to_json(),
        repeatable=dry_run,
        reads_body=not dry_run,
    )


def build_server(server_id: int, body: BuildServerBody) -> HttpRequest:
    return build_request(
        "POST", f"/servers/{_id(server_id)}/build", json_body=body.to_json(), repeatable=False
    )


def list_servers(page: int, results: int = MAX_PAGE_SIZE) -> HttpRequest:
    return build_request("GET", "/servers", query={"results": results, "page": page})


def user_servers(user_id: int) -> HttpRequest:
    return build_request("GET", f"/servers/user/{_id(user_id)}")


def get_server(server_id: int, *, remote_state: bool = False) -> HttpRequest:
    query = {"remoteState": True} if remote_state else None
    return build_request("GET", f"/servers/{_id(server_id)}", query=query)


def delete_server(server_id: int, *, delay_min: int = 0) -> HttpRequest:
    """`DELETE /servers/{id}?delay=N`; `delay` is always sent, 0 included.

    The spec gives `delay` a range (0-43800 minutes) but no default, and the Paymenter
    integration sends 5: leaving it out could mean a delay vfbot never asked for.
    """
    if not 0 <= delay_min <= DELETE_DELAY_MAX_MIN:
        raise ValueError(f"delay must be 0..{DELETE_DELAY_MAX_MIN} minutes, got {delay_min}")
    path = f"/servers/{_id(server_id)}"
    return build_request("DELETE", path, query={"delay": delay_min}, reads_body=False)


def suspend_server(server_id: int) -> HttpRequest:
    return build_request("POST", f"/servers/{_id(server_id)}/suspend", reads_body=False)


def unsuspend_server(server_id: int) -> HttpRequest:
    return build_request("POST", f"/servers/{_id(server_id)}/unsuspend", reads_body=False)


def power(server_id: int, action: PowerAction) -> HttpRequest:
    if action not in ("boot", "shutdown", "restart", "poweroff"):
        raise ValueError(f"unknown power action {action!r}")
    return build_request("POST", f"/servers/{_id(server_id)}/power/{action}")


def get_queue(queue_id: int) -> HttpRequest:
    return build_request("GET", f"/queue/{_id(queue_id)}")


def set_backup_plan(server_id: int, plan_id: int) -> HttpRequest:
    """Attach a backup plan; plan 0 removes it."""
    path = f"/servers/{_id(server_id)}/backups/plan/{_id(plan_id)}"
    return build_request("PUT", path, reads_body=False)


def change_owner(server_id: int, new_owner_id: int) -> HttpRequest:
    path = f"/servers/{_id(server_id)}/owner/{_id(new_owner_id)}"
    return build_request("PUT", path, reads_body=False)


def set_vnc(server_id: int, *, enabled: bool) -> HttpRequest:
    body = {"action": "enable" if enabled else "disable"}
    return build_request("POST", f"/servers/{_id(server_id)}/vnc", json_body=body)


def traffic(server_id: int) -> HttpRequest:
    return build_request("GET", f"/servers/{_id(server_id)}/traffic")


def cpu_throttle(server_id: int, percent: int, *, sync: bool = False) -> HttpRequest:
    if not 0 <= percent <= 99:
        raise ValueError(f"CPU throttle must be 0..99 percent, got {percent}")
    return build_request(
        "PUT",
        f"/servers/{_id(server_id)}/modify/cpuThrottle",
        query={"sync": sync},
        json_body={"percent": percent},
        reads_body=False,
    )


def _id(value: int) -> int:
    """Ids go into paths as integers; a string here is a caller bug worth catching early."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(f"ids must be non-negative integers, got {value!r}")
    return value


# -- response parsing ---------------------------------------------------------------------------

_STATUS_ERRORS: dict[int, type[ApiError]] = {
    401: AuthError,
    403: ForbiddenError,
    404: NotFoundError,
    409: ConflictError,
    422: InvalidRequestError,
    423: LockedError,
    429: RateLimitedError,
}


def decode_json(request: HttpRequest, response: RawResponse) -> object:
    """The decoded JSON body, or None for an empty one."""
    if not response.body.strip():
        return None
    try:
        return json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        # The body is not quoted: a mangled build reply could carry the root password.
        kind = response.headers.get("content-type", "unknown type")
        raise DecodeError(
            f"{request.label} returned {response.status} with a body that is not JSON "
            f"({len(response.body)} bytes of {kind})",
            method=request.method,
            path=request.path,
        ) from None


def panel_messages(payload: object) -> tuple[str, ...]:
    """The panel's own error words: `errors` as a list or a dict of lists, else `msg`/`message`."""
    if not isinstance(payload, Mapping):
        return ()
    errors = payload.get("errors")
    found: list[str] = []
    if isinstance(errors, list):
        found = [str(e) for e in errors if e not in (None, "")]
    elif isinstance(errors, Mapping):
        for key, value in errors.items():
            items = value if isinstance(value, list) else [value]
            found.extend(f"{key}: {item}" for item in items if item not in (None, ""))
    elif isinstance(errors, str) and errors:
        found = [errors]
    if not found:
        for key in ("msg", "message"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                found = [value]
                break
    return tuple(found)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """`Retry-After` in seconds or as an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are always UTC (RFC 9110)
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_response(request: HttpRequest, response: RawResponse, now: datetime) -> object:
    """Return the decoded body of a 2xx answer, or raise the error class its status means.

    A 2xx answer to a request that does not read its body returns None, whatever the body is.
    A 401 body is never parsed: the spec's is `401 Unauthorized` as `application/octet-stream`.
    """
    if 200 <= response.status < 300:
        return decode_json(request, response) if request.reads_body else None
    payload: object = None
    if response.status != 401:
        try:
            payload = decode_json(request, response)
        except DecodeError:
            payload = None  # e.g. an HTML error page from a proxy: the status tells the story
    messages = panel_messages(payload)
    status = response.status
    message = f"{request.label} failed with HTTP {status}"
    if messages:
        message += ": " + "; ".join(messages)
    elif status == 401:
        message += " (the API token is missing, invalid or expired)"
    retry_after = (
        parse_retry_after(response.headers.get("retry-after"), now) if status == 429 else None
    )
    error_class = PanelError if status >= 500 else _STATUS_ERRORS.get(status, ApiError)
    raise error_class(
        message,
        method=request.method,
        path=request.path,
        status=status,
        messages=messages,
        retry_after_s=retry_after,
    )


def _envelope_error(request: HttpRequest, what: str) -> DecodeError:
    return DecodeError(
        f"{request.label} returned an unexpected shape: {what}",
        method=request.method,
        path=request.path,
    )


def parse_data(request: HttpRequest, payload: object, model: type[M]) -> M:
    """Unwrap `{data: {...}}` into `model`."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        raise _envelope_error(request, "expected an object under 'data'")
    return _validate(request, payload["data"], model, "data")


def parse_list(
    request: HttpRequest, payload: object, model: type[M], *, lenient: bool = False
) -> list[M]:
    """Unwrap `{data: [...]}`; a paginator envelope is accepted too (its first page).

    A row that does not validate fails the whole list, naming its index and field: a listing
    vfbot cannot fully read must never look like "that server is not there" (reconciliation
    would create it again). `lenient` drops such rows instead, with a debug log, for lists that
    are only shown.
    """
    items = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(items, list):
        raise _envelope_error(request, "expected a list under 'data'")
    if not lenient:
        return [_validate(request, item, model, f"data[{i}]") for i, item in enumerate(items)]
    rows: list[M] = []
    for index, item in enumerate(items):
        try:
            rows.append(_validate(request, item, model, f"data[{index}]"))
        except DecodeError as error:
            logger.debug("%s; row skipped", error)
    return rows


def parse_page(request: HttpRequest, payload: object, model: type[M]) -> Page[M]:
    """Parse a Laravel paginator envelope (`current_page`, `data`, `last_page`, ...)."""
    if not isinstance(payload, Mapping):
        raise _envelope_error(request, "expected a paginator object")
    items = parse_list(request, payload, model)
    current = _int(payload.get("current_page"), 1)
    last = _int(payload.get("last_page"), current)
    has_next = payload.get("next_page_url") is not None if "next_page_url" in payload else False
    return Page[model](  # type: ignore[valid-type]  # runtime generic parametrisation
        items=items,
        current_page=current,
        last_page=last,
        total=_int(payload.get("total"), len(items)),
        has_next=has_next or current < last,
    )


def parse_templates(request: HttpRequest, payload: object) -> list[OsTemplate]:
    """Flatten `{data: [group{name, templates[]}]}` into templates that know their group.

    A template row vfbot cannot read (say, a null `id`) is dropped with a debug log: the others
    stay usable, and a request naming the dropped one is told it does not exist.
    """
    groups = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(groups, list):
        raise _envelope_error(request, "expected a list of template groups under 'data'")
    out: list[OsTemplate] = []
    for index, group in enumerate(groups):
        if not isinstance(group, Mapping):
            logger.debug("%s: data[%d] is not a template group; skipped", request.label, index)
            continue
        templates = group.get("templates")
        for row, template in enumerate(templates if isinstance(templates, list) else []):
            where = f"data[{index}].templates[{row}]"
            name = group.get("name")
            data = {**template, "group": name} if isinstance(template, Mapping) else template
            try:
                out.append(_validate(request, data, OsTemplate, where))
            except DecodeError as error:
                logger.debug("%s; template skipped", error)
    return out


def parse_vnc(request: HttpRequest, payload: object) -> VncSession:
    """VNC answers nest the session under `data.vnc`."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        raise _envelope_error(request, "expected an object under 'data'")
    data = payload["data"]
    nested = data.get("vnc")
    vnc: Mapping[str, object] = nested if isinstance(nested, Mapping) else data
    return _validate(request, vnc, VncSession, "data.vnc" if vnc is nested else "data")


def _validate(request: HttpRequest, data: object, model: type[M], where: str) -> M:
    """`data` as `model`; a failure names the endpoint, the field and what was wrong."""
    try:
        return model.model_validate(data, context={"endpoint": request.label})
    except ValidationError as exc:
        # Only the location and pydantic's message, never `input`: the input values may hold
        # secrets (a build answer carries the root password). `from None` for the same reason.
        first = exc.errors(include_url=False, include_input=False)[0]
        field = ".".join([where, *(str(p) for p in first["loc"])])
        raise _envelope_error(
            request, f"{field}: {first['msg']} (vfbot reads this field as {model.__name__})"
        ) from None


def _int(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default
