"""Pure building and parsing for the day-2 endpoints (rename, resize, password, firewall, IPv4,
backups, a server's templates) and the models of their answers; no I/O, no clocks.

The sibling of `_sansio` and `_models` for what a server needs after it exists, kept apart so
neither grows past a readable size; the same rules hold: ids go into paths as integers, every
builder says whether the retry policy may send it twice, and a model names only the fields vfbot
reads. Where the spec leaves a shape UNKNOWN (the firewall's `rules[]`, whether `progress` of a
backup is a flag or a percentage) the model reads it defensively instead of guessing a type.
Secrets (the password a reset or a rebuild returns) are `SecretStr` and never logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import Annotated, Literal

from pydantic import AliasPath, BeforeValidator, Field, SecretStr, model_validator

from bot.virtfusion._models import EmptyStr, Flag, Timestamp, _PanelModel
from bot.virtfusion._sansio import HttpRequest, _id, build_request

__all__ = [
    "PACKAGE_FLAGS",
    "RESET_USERS",
    "Backup",
    "FirewallState",
    "Interface",
    "PackageChange",
    "PasswordReset",
    "PendingAction",
    "ServerExtras",
    "add_ipv4",
    "apply_firewall_rulesets",
    "change_package",
    "firewall",
    "modify_cpu_cores",
    "modify_memory",
    "parse_build_password",
    "parse_ipv4_added",
    "remove_ipv4",
    "rename_server",
    "reset_password",
    "server_backups",
    "server_templates",
    "set_firewall",
]

logger = logging.getLogger("bot.virtfusion")

Interface = Literal["primary", "secondary"]
"""A server's network interface; the spec's examples and enum use lowercase."""

# Every flag `PUT /servers/{id}/package/{packageId}` takes. The spec documents none of them nor
# their defaults, so vfbot always sends all eleven (SPEC: REF L1176-1211).
PACKAGE_FLAGS: tuple[str, ...] = (
    "backupPlan",
    "cpu",
    "memory",
    "primaryDiskReadIOPS",
    "primaryDiskReadThroughput",
    "primaryDiskSize",
    "primaryDiskWriteIOPS",
    "primaryDiskWriteThroughput",
    "primaryNetworkInboundSpeed",
    "primaryNetworkOutboundSpeed",
    "primaryNetworkTraffic",
)
RESET_USERS: tuple[str, ...] = ("root", "Administrator")  # "Either root or Administrator."

_RULE_CHARS = 200


# -- endpoint builders --------------------------------------------------------------------------


def _server(server_id: int) -> str:
    return f"/servers/{_id(server_id)}"


def server_templates(server_id: int) -> HttpRequest:
    """`GET /servers/{id}/templates`: the templates this server may be (re)built with."""
    return build_request("GET", f"{_server(server_id)}/templates")


def _modify(server_id: int, setting: str, body: dict[str, object]) -> HttpRequest:
    """`PUT /servers/{id}/modify/{setting}`; 201 with no body documented."""
    path = f"{_server(server_id)}/modify/{setting}"
    return build_request("PUT", path, json_body=body, reads_body=False)


def rename_server(server_id: int, name: str) -> HttpRequest:
    """`PUT /servers/{id}/modify/name`; 201 with no body documented."""
    return _modify(server_id, "name", {"name": name})


def change_package(server_id: int, package_id: int, flags: Mapping[str, bool]) -> HttpRequest:
    """`PUT /servers/{id}/package/{packageId}` with every flag of `PACKAGE_FLAGS` given."""
    missing = [f for f in PACKAGE_FLAGS if f not in flags]
    if missing or set(flags) - set(PACKAGE_FLAGS):
        raise ValueError(f"give exactly the package flags {PACKAGE_FLAGS}; missing {missing}")
    path = f"{_server(server_id)}/package/{_id(package_id)}"
    return build_request("PUT", path, json_body={f: bool(flags[f]) for f in PACKAGE_FLAGS})


def modify_memory(server_id: int, memory_mb: int) -> HttpRequest:
    """`PUT /servers/{id}/modify/memory` ("the new memory value in MB"); 201, no body."""
    return _modify(server_id, "memory", {"memory": _positive(memory_mb, "memory")})


def modify_cpu_cores(server_id: int, cores: int) -> HttpRequest:
    """`PUT /servers/{id}/modify/cpuCores`; 201, no body."""
    return _modify(server_id, "cpuCores", {"cores": _positive(cores, "cores")})


def reset_password(server_id: int, user: str = "root") -> HttpRequest:
    """`POST /servers/{id}/resetPassword` with `sendMail: false` always: the spec's default is
    true, which would email the new password to the owner.

    Not repeatable: a second reset makes a second password, and the first one shown is void.
    """
    if user not in RESET_USERS:
        raise ValueError(f"user must be one of {RESET_USERS}, got {user!r}")
    return build_request(
        "POST",
        f"{_server(server_id)}/resetPassword",
        json_body={"user": user, "sendMail": False},
        repeatable=False,
    )


def firewall(server_id: int, interface: Interface = "primary") -> HttpRequest:
    """`GET /servers/{id}/firewall/{interface}` (no `sync`: reading applies nothing)."""
    return build_request("GET", f"{_server(server_id)}/firewall/{_interface(interface)}")


def set_firewall(
    server_id: int, *, enabled: bool, interface: Interface = "primary", sync: bool = True
) -> HttpRequest:
    """`POST /servers/{id}/firewall/{interface}/enable|disable?sync=true`; 200, no body.

    `sync` ("synchronise and apply") defaults to false on the panel, which may store the change
    without applying it; vfbot asks for it to apply now.
    """
    verb = "enable" if enabled else "disable"
    path = f"{_server(server_id)}/firewall/{_interface(interface)}/{verb}"
    return build_request("POST", path, query={"sync": sync}, reads_body=False)


def apply_firewall_rulesets(
    server_id: int, rulesets: Sequence[int], *, interface: Interface = "primary", sync: bool = True
) -> HttpRequest:
    """`POST /servers/{id}/firewall/{interface}/rules?sync=true`: flush every rule, then apply
    `rulesets` (an empty list only flushes); 201, no body."""
    ids = [_id(r) for r in rulesets]
    path = f"{_server(server_id)}/firewall/{_interface(interface)}/rules"
    return build_request(
        "POST", path, query={"sync": sync}, json_body={"rulesets": ids}, reads_body=False
    )


def add_ipv4(server_id: int, quantity: int, interface: Interface = "primary") -> HttpRequest:
    """`POST /servers/{id}/ipv4Qty`: add `quantity` addresses; answers the added ones.

    Not repeatable: a second call after a lost answer would add more addresses.
    """
    body = {"interface": _interface(interface), "quantity": _positive(quantity, "quantity")}
    return build_request("POST", f"{_server(server_id)}/ipv4Qty", json_body=body, repeatable=False)


def remove_ipv4(
    server_id: int, addresses: Sequence[str], interface: Interface = "primary"
) -> HttpRequest:
    """`DELETE /servers/{id}/ipv4` with `{interface, ip: [...]}`; 204.

    `interface` is required by the YAML copy of the spec only; vfbot sends it either way.
    """
    if not addresses:
        raise ValueError("name at least one address to remove")
    body = {"interface": _interface(interface), "ip": list(addresses)}
    return build_request(
        "DELETE", f"{_server(server_id)}/ipv4", json_body=body, reads_body=False, repeatable=False
    )


def server_backups(server_id: int) -> HttpRequest:
    """`GET /backups/server/{id}`: not paginated."""
    return build_request("GET", f"/backups/server/{_id(server_id)}")


def _interface(value: str) -> str:
    if value not in ("primary", "secondary"):
        raise ValueError(f"interface must be primary or secondary, got {value!r}")
    return value


def _positive(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return value


# -- answers ------------------------------------------------------------------------------------


def parse_build_password(payload: object) -> SecretStr | None:
    """The root password a build answer carries in `settings.decryptedPassword`, as a secret;
    None when the answer has none. Never log or store it."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    settings = data.get("settings") if isinstance(data, Mapping) else None
    password = settings.get("decryptedPassword") if isinstance(settings, Mapping) else None
    return SecretStr(password) if isinstance(password, str) and password else None


def parse_ipv4_added(request: HttpRequest, payload: object) -> list[str]:
    """The addresses `ipv4Qty` added (`{"data": ["192.168.4.36", ...]}`); rows that are not
    strings are dropped with a debug log."""
    items = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(items, list):
        logger.debug("%s: no address list under 'data'", request.label)
        return []
    return [item for item in items if isinstance(item, str) and item]


class PackageChange(_PanelModel):
    """The answer of a package change: `info` lists what was **not** changed (*inferred*: the
    spec's example lists no line for the items its request changed)."""

    info: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _lines(cls, data: object) -> object:
        info = data.get("info") if isinstance(data, Mapping) else None
        lines = info if isinstance(info, list) else []
        return {"info": tuple(line for line in lines if isinstance(line, str) and line)}


class PasswordReset(_PanelModel):
    """A root password reset: the queue task that applies it and the password it will set."""

    queue_id: int = Field(alias="queueId")
    password: SecretStr = Field(alias="expectedPassword")


def _rule_text(rule: object) -> str:
    """One firewall rule as short text: the shape of `rules[]` is UNKNOWN in the spec."""
    if isinstance(rule, Mapping):
        text = ", ".join(f"{k}={json.dumps(v, default=str)}" for k, v in sorted(rule.items()))
    else:
        text = json.dumps(rule, default=str)
    return text if len(text) <= _RULE_CHARS else text[: _RULE_CHARS - 1] + "…"


def _rules(value: object) -> object:
    return tuple(_rule_text(r) for r in value) if isinstance(value, list) else ()


class FirewallState(_PanelModel):
    """A firewall (`{"data": {"enabled": true, "rules": []}}`); each rule rendered as text."""

    enabled: bool = False
    rules: Annotated[tuple[str, ...], BeforeValidator(_rules)] = ()


class Backup(_PanelModel):
    """One backup of `GET /backups/server/{id}`; sizes do not exist in the API."""

    id: int
    storage: EmptyStr = Field(default="", validation_alias=AliasPath("storage", "name"))
    complete: bool = False
    # A boolean in the spec's example, not a percentage; any non-zero number reads as yes.
    in_progress: Flag = Field(default=False, alias="progress")
    deleting: bool = False
    restoring: bool = False
    created: Timestamp = None
    delete_after: Timestamp = Field(default=None, alias="deleteAfter")

    @property
    def state(self) -> str:
        """In words: being deleted, being restored, in progress, or complete."""
        if self.deleting:
            return "being deleted"
        if self.restoring:
            return "being restored"
        return "in progress" if self.in_progress or not self.complete else "complete"


class PendingAction(_PanelModel):
    """A change the panel holds until a power action (`tasks.actions.pending[]`), e.g. the
    create example's "Create HDD (sdb)" that `requires` boot/restart/shutdown/poweroff."""

    action: EmptyStr = ""
    requires: tuple[str, ...] = ()


class ServerExtras(_PanelModel):
    """What day-2 work reads from `GET /servers/{id}` beyond `Server`: the SSH keys a rebuild
    keeps, the changes waiting for a restart, and the backup plan's name."""

    ssh_key_ids: tuple[int, ...] = ()
    pending: tuple[PendingAction, ...] = ()
    backup_plan: str = ""

    @model_validator(mode="before")
    @classmethod
    def _flatten(cls, data: object) -> object:
        if not isinstance(data, Mapping):
            return data
        keys = data.get("sshKeys")
        key_ids = [
            k.get("id")
            for k in (keys if isinstance(keys, list) else [])
            if isinstance(k, Mapping) and k.get("enabled", True) is not False
        ]
        tasks = data.get("tasks")
        actions = tasks.get("actions") if isinstance(tasks, Mapping) else None
        pending = actions.get("pending") if isinstance(actions, Mapping) else None
        plan = data.get("backupPlan")
        return {
            "ssh_key_ids": tuple(k for k in key_ids if isinstance(k, int) and k > 0),
            "pending": tuple(
                {"action": p.get("action"), "requires": _strings(p.get("requires"))}
                for p in (pending if isinstance(pending, list) else [])
                if isinstance(p, Mapping)
            ),
            "backup_plan": _string(plan.get("name")) if isinstance(plan, Mapping) else "",
        }

    def restart_needed(self) -> tuple[str, ...]:
        """The pending changes that wait for a restart (or boot/shutdown/power-off)."""
        waits = {"restart", "boot", "shutdown", "poweroff"}
        return tuple(p.action or "a change" for p in self.pending if waits & set(p.requires))


def _string(value: object) -> str:
    return value if isinstance(value, str) else ""


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()
