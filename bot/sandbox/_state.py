"""The fake panel's whole state: records, fault knobs, timing, request log and clock; no HTTP."""

from __future__ import annotations

import random
import re
import string
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Literal, TypeVar, cast, get_args

from bot.sandbox._models import (
    FAIL_SHAPES,
    AdditionalDisk,
    Backup,
    BuildRecord,
    FailShape,
    Hypervisor,
    HypervisorGroup,
    Ipv4Assignment,
    NetworkProfile,
    Package,
    QueueTask,
    Server,
    SshKey,
    Template,
    TemplateGroup,
    User,
    after,
)
from bot.sandbox._seed import seed_demo_data
from bot.sandbox.clock import utc_now

FaultKind = Literal[
    "401",
    "403",
    "409",
    "423",
    "429",
    "500",
    "502",
    "503",
    "504",
    "hang",
    "drop",
    "commit_then_500",
    "commit_then_hang",
    "commit_then_drop",
]
CommitThenFail = Literal["off", "500", "hang", "drop"]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)
COMMIT_THEN_FAIL_MODES: tuple[str, ...] = get_args(CommitThenFail)
_APPLIES_PENDING = ("boot", "restart", "shutdown", "poweroff")


class ValidationError(Exception):
    """A request the panel rejects with 422 `{"errors": [...]}`."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


def _non_negative_float(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError(f"{name} must be a non-negative number")
    return float(value)


def _int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer")
    return value


def _ratio(name: str, value: object) -> float:
    ratio = _non_negative_float(name, value)
    if ratio > 1:
        raise ValueError(f"{name} must be between 0 and 1")
    return ratio


def _one_of(choices: tuple[str, ...]) -> Callable[[str, object], object]:
    def parse(name: str, value: object) -> object:
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}")
        return value

    return parse


def _script(name: str, value: object) -> list[ScriptedFault]:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be a list")
    return [ScriptedFault.from_json(item) for item in value]


_PARSE = "parse"  # a knob's metadata: how `update` reads an untrusted JSON value
_T = TypeVar("_T")


def _knob(default: _T, parse: Callable[[str, object], object]) -> _T:
    """A field settable at run time; `parse(name, value)` checks a JSON value (ValueError)."""
    return field(default=default, metadata={_PARSE: parse})


def _update_knobs(knobs: BuildTiming | Faults, values: Mapping[str, object], what: str) -> None:
    """Set `knobs`' fields from untrusted JSON values; raises ValueError (nothing is changed
    then), also for a field that is not a knob."""
    parsers = {f.name: f.metadata[_PARSE] for f in fields(knobs) if _PARSE in f.metadata}
    staged: dict[str, object] = {}
    for name, value in values.items():
        if name not in parsers:
            raise ValueError(f"unknown {what} field {name!r}")
        staged[name] = parsers[name](name, value)
    for name, value in staged.items():
        setattr(knobs, name, value)


@dataclass
class BuildTiming:
    """How long the fake hypervisor takes, and which builds fail and how they look.

    Phases are computed from the clock on every read. `fail_next` fails the next N builds and
    `fail_ratio` a random share; `fail_shape` is how a failure is reported: "build_failed"
    (`buildFailed: true`) or "state_failed" (`state: "failed"` with `buildFailed: false`, the
    official example's shape). A failing build stays at `commissionStatus` 2 either way.
    """

    queued_s: float = _knob(2.0, _non_negative_float)
    build_s: float = _knob(8.0, _non_negative_float)
    power_s: float = _knob(3.0, _non_negative_float)
    fail_ratio: float = _knob(0.0, _non_negative_float)
    fail_next: int = _knob(0, _int)
    fail_shape: FailShape = field(default="build_failed", metadata={_PARSE: _one_of(FAIL_SHAPES)})

    def update(self, values: Mapping[str, object]) -> None:
        """Set fields from untrusted JSON values; raises ValueError (nothing is changed then)."""
        _update_knobs(self, values, "timing")

    def to_json(self) -> dict[str, object]:
        """The fields as a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ScriptedFault:
    """A one-shot fault for the next `times` requests whose method and api path match.

    `path_regex` is searched (`re.search`) in the path without `/api/v1` and without query;
    `method` "*" matches any method; only `/api/v1` requests are considered, before auth.
    `commit_then_*` kinds let the handler run (and commit)
    and then replace a successful response with a 500, a hang or a dropped connection.
    """

    method: str
    path_regex: str
    kind: FaultKind
    times: int = 1
    retry_after_s: int | None = None

    def matches(self, method: str, api_path: str) -> bool:
        """Whether this fault applies to a request."""
        method_ok = self.method == "*" or self.method.upper() == method.upper()
        return method_ok and re.search(self.path_regex, api_path) is not None

    def to_json(self) -> dict[str, object]:
        """The fields as a JSON-ready dict."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, value: object) -> ScriptedFault:
        """Parse one untrusted JSON object; raises ValueError."""
        if not isinstance(value, dict):
            raise ValueError("each script entry must be an object")
        method, path_regex, kind = value.get("method"), value.get("path_regex"), value.get("kind")
        if not isinstance(method, str) or not isinstance(path_regex, str):
            raise ValueError("script entries need string method and path_regex")
        re.compile(path_regex)
        kind_name = _fault_kind(kind)
        times = _int("times", value.get("times", 1))
        retry = value.get("retry_after_s")
        retry_after_s = None if retry is None else _int("retry_after_s", retry)
        return cls(method, path_regex, kind_name, times, retry_after_s)


@dataclass
class Faults:
    """Fault knobs, mutable at run time; random ones hit only `/api/v1`, via the seeded RNG."""

    latency_s: float = _knob(0.0, _non_negative_float)
    rate_limit_ratio: float = _knob(0.0, _ratio)
    retry_after_s: int = _knob(1, _int)
    server_error_ratio: float = _knob(0.0, _ratio)
    hang_ratio: float = _knob(0.0, _ratio)
    hang_s: float = _knob(30.0, _non_negative_float)
    drop_ratio: float = _knob(0.0, _ratio)
    commit_then_fail: CommitThenFail = field(
        default="off", metadata={_PARSE: _one_of(COMMIT_THEN_FAIL_MODES)}
    )
    commit_then_fail_count: int = _knob(-1, _int)
    script: list[ScriptedFault] = field(default_factory=list, metadata={_PARSE: _script})

    def take_scripted(self, method: str, api_path: str) -> ScriptedFault | None:
        """Consume one use of the first scripted fault matching the request."""
        for index, fault in enumerate(self.script):
            if fault.matches(method, api_path):
                fault.times -= 1
                if fault.times <= 0:
                    del self.script[index]
                return fault
        return None

    def take_commit_then_fail(self) -> CommitThenFail:
        """Consume one use of the commit-then-fail knob; "off" when exhausted or disabled."""
        if self.commit_then_fail == "off" or self.commit_then_fail_count == 0:
            return "off"
        if self.commit_then_fail_count > 0:
            self.commit_then_fail_count -= 1
        return self.commit_then_fail

    def update(self, values: Mapping[str, object]) -> None:
        """Set fields from untrusted JSON values; raises ValueError (nothing is changed then)."""
        _update_knobs(self, values, "fault")

    def to_json(self) -> dict[str, object]:
        """The fields as a JSON-ready dict."""
        out: dict[str, object] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["script"] = [s.to_json() for s in self.script]
        return out


@dataclass
class LoggedRequest:
    """One request as the panel saw it; `status` is None when dropped or abandoned mid-hang."""

    method: str
    path: str
    api_path: str
    query: dict[str, str]
    body: object
    at: datetime
    status: int | None = None
    fault: str | None = None

    def to_json(self) -> dict[str, object]:
        """The entry as a JSON-ready dict."""
        return {
            "method": self.method,
            "path": self.path,
            "api_path": self.api_path,
            "query": self.query,
            "body": self.body,
            "at": self.at.isoformat(),
            "status": self.status,
            "fault": self.fault,
        }


@dataclass
class Usage:
    """What the live servers on one hypervisor consume."""

    servers: int = 0
    memory_mb: int = 0
    cpu_cores: int = 0
    storage_gb: int = 0
    ipv4: int = 0


@dataclass
class CreateSpec:
    """A validated `POST /servers` body with package defaults applied."""

    package: Package
    user: User
    group: HypervisorGroup
    ipv4: int
    storage_gb: int
    traffic_gb: int
    memory_mb: int
    cpu_cores: int
    network_speed_in: int
    network_speed_out: int
    storage_profile: int
    network_profile: int
    firewall_rulesets: list[int]
    asset_groups: list[int]
    additional_disks: list[AdditionalDisk]


@dataclass
class BuildSpec:
    """A validated `POST /servers/{id}/build` body."""

    template: Template
    name: str | None
    hostname: str | None
    ssh_key_ids: list[int]
    vnc: bool | None
    ipv6: bool
    swap: float | None


class PanelState:
    """All in-memory panel data, fault knobs, request log and the injected clock.

    The constructor seeds the demo data (see the package docstring) unless `demo_data=False`.
    `token_scopes=None` grants every scope; otherwise the first path segment after `/api/v1`
    (`compute`, `servers`, `packages`, `media`, `ssh_keys`, `users`, `queue`) must be in it.
    """

    def __init__(
        self,
        *,
        token: str = "sandbox-token",
        clock: Callable[[], datetime] | None = None,
        seed: int = 0,
        timing: BuildTiming | None = None,
        faults: Faults | None = None,
        demo_data: bool = True,
    ) -> None:
        self.token = token
        self.token_scopes: set[str] | None = None
        self.clock: Callable[[], datetime] = clock or utc_now
        self.rng = random.Random(seed)
        self._data_rng = random.Random(f"data-{seed}")
        self.timing = timing or BuildTiming()
        self.faults = faults or Faults()
        self.log: list[LoggedRequest] = []
        # Every credential handed out (root and VNC passwords, wss tokens), so leak tests can
        # check that none of them reaches a log line or a Slack message.
        self.issued_secrets: list[str] = []
        self.users: dict[int, User] = {}
        self.groups: dict[int, HypervisorGroup] = {}
        self.hypervisors: dict[int, Hypervisor] = {}
        self.network_profiles: dict[int, NetworkProfile] = {}
        self.packages: dict[int, Package] = {}
        self.template_groups: dict[int, TemplateGroup] = {}
        self.templates: dict[int, Template] = {}
        self.ssh_keys: dict[int, SshKey] = {}
        self.storage_profiles: dict[int, str] = {}
        self.firewall_rulesets: set[int] = set()
        self.asset_groups: set[int] = set()
        self.backup_plans: dict[int, str] = {}
        self.servers: dict[int, Server] = {}
        self.queue: dict[int, QueueTask] = {}
        self.backups: list[Backup] = []
        # Servers whose reset password the panel emailed (`sendMail` is true unless sent false).
        self.password_mails: list[int] = []
        # Id ranges differ per kind so a client mixing ids up gets a 404/422, not a wrong hit.
        self.next_server_id = 101
        self.next_queue_id = 5001
        self.next_backup_id = 9001
        self.next_ssh_key_id = 1
        if demo_data:
            seed_demo_data(self)
        self.next_ssh_key_id = max(self.ssh_keys, default=0) + 1

    def __repr__(self) -> str:
        return f"PanelState(servers={len(self.servers)}, log={len(self.log)})"

    def now(self) -> datetime:
        """The injected clock's current time."""
        return self.clock()

    # -- request log -------------------------------------------------------------------------

    def calls(self, method: str, path_regex: str) -> list[LoggedRequest]:
        """Logged requests with this method ("*" = any) whose api path matches (`re.search`)."""
        return [
            entry
            for entry in self.log
            if (method == "*" or entry.method == method.upper())
            and re.search(path_regex, entry.api_path)
        ]

    def count(self, method: str, path_regex: str) -> int:
        """How many logged requests `calls()` would return."""
        return len(self.calls(method, path_regex))

    def reset_log(self) -> None:
        """Forget every logged request."""
        self.log.clear()

    # -- time-driven bookkeeping -------------------------------------------------------------

    def settle(self) -> None:
        """Apply due deletions, and pending changes a finished power action applied; called
        before each API request.

        Power jobs change nothing else visible: the panel's power state is only in
        `remoteState`, whose answer the spec does not document, so the sandbox reports none.
        """
        now = self.now()
        for server_id in [s.id for s in self.servers.values() if s.gone(now)]:
            del self.servers[server_id]
        for task in self.queue.values():  # a finished power action applies pending changes
            server = self.servers.get(task.server_id)
            applied = task.action in _APPLIES_PENDING and task.finished(now) and not task.error
            if server is not None and server.pending and applied:
                server.pending = [c for c in server.pending if c.created > task.started]

    def locked(self, server: Server) -> bool:
        """Whether the server has an in-flight task, so state-changing calls answer 423."""
        now = self.now()
        if server.building(now):
            return True
        return any(t.server_id == server.id and not t.finished(now) for t in self.queue.values())

    # -- capacity ---------------------------------------------------------------------------

    def usage(self, hypervisor: Hypervisor) -> Usage:
        """Resources the live servers on `hypervisor` hold."""
        usage = Usage()
        for server in self.servers.values():
            if server.hypervisor_id != hypervisor.id:
                continue
            usage.servers += 1
            usage.memory_mb += server.memory_mb
            usage.cpu_cores += server.cpu_cores
            usage.storage_gb += server.all_storage_gb()
            usage.ipv4 += len(server.ipv4)
        return usage

    def free_ipv4(self, hypervisor: Hypervisor) -> list[str]:
        """Pool addresses not bound to any server, in pool order."""
        taken = {ip.address for s in self.servers.values() for ip in s.ipv4}
        return [a for a in hypervisor.ipv4_pool.addresses if a not in taken]

    def group_hypervisors(self, group_id: int) -> list[Hypervisor]:
        """Hypervisors of a group, by id."""
        return sorted(
            (h for h in self.hypervisors.values() if h.group_id == group_id), key=lambda h: h.id
        )

    def place(self, spec: CreateSpec) -> Hypervisor:
        """Pick the eligible hypervisor with the most free memory; raises ValidationError."""
        group = spec.group
        candidates = [
            h
            for h in self.group_hypervisors(group.id)
            if h.is_eligible() and h.uses_profile(spec.network_profile)
        ]
        if not candidates:
            raise ValidationError([f"No hypervisor in group {group.name} is accepting new servers"])
        disk_gb = spec.storage_gb + sum(d.capacity_gb for d in spec.additional_disks)
        checks: list[tuple[Callable[[Hypervisor, Usage], bool], str]] = [
            (
                # 0: no limit, as the spec's resources examples read (max 0, free -allocated)
                lambda h, u: h.max_servers == 0 or u.servers + 1 <= h.max_servers,
                f"No hypervisor in group {group.name} can take another server (server limit)",
            ),
            (
                lambda h, u: u.memory_mb + spec.memory_mb <= h.max_memory_mb,
                f"No hypervisor in group {group.name} has enough free memory "
                f"(needs {spec.memory_mb} MB)",
            ),
            (
                lambda h, u: u.cpu_cores + spec.cpu_cores <= h.max_cpu,
                f"No hypervisor in group {group.name} has enough free CPU cores "
                f"(needs {spec.cpu_cores})",
            ),
            (
                lambda h, u: u.storage_gb + disk_gb <= h.max_storage_gb,
                f"No hypervisor in group {group.name} has enough free storage (needs {disk_gb} GB)",
            ),
            (
                lambda h, u: len(self.free_ipv4(h)) >= spec.ipv4,
                f"No hypervisor in group {group.name} has enough free IPv4 addresses "
                f"(needs {spec.ipv4})",
            ),
        ]
        usages = {h.id: self.usage(h) for h in candidates}
        for check, message in checks:
            candidates = [h for h in candidates if check(h, usages[h.id])]
            if not candidates:
                raise ValidationError([message])
        return max(candidates, key=lambda h: (h.max_memory_mb - usages[h.id].memory_mb, -h.id))

    # -- mutations ----------------------------------------------------------------------------

    def create_server(self, spec: CreateSpec, hypervisor: Hypervisor) -> Server:
        """Allocate a server (commissionStatus 0) with its IPv4 addresses bound already."""
        now = self.now()
        server_id = self.next_server_id
        self.next_server_id += 1
        pool = hypervisor.ipv4_pool
        addresses = self.free_ipv4(hypervisor)[: spec.ipv4]
        network = next(n for n in hypervisor.networks if spec.network_profile in n.profile_ids)
        server = Server(
            id=server_id,
            uuid=str(uuid.UUID(int=self._data_rng.getrandbits(128), version=4)),
            owner_id=spec.user.id,
            group_id=spec.group.id,
            hypervisor_id=hypervisor.id,
            package_id=spec.package.id,
            created=now,
            updated=now,
            memory_mb=spec.memory_mb,
            storage_gb=spec.storage_gb,
            traffic_gb=spec.traffic_gb,
            cpu_cores=spec.cpu_cores,
            network_speed_in=spec.network_speed_in,
            network_speed_out=spec.network_speed_out,
            storage_profile=spec.storage_profile,
            network_profile=spec.network_profile,
            hypervisor_network_id=network.id,
            mac="52:54:00:" + ":".join(f"{self._data_rng.randrange(256):02x}" for _ in range(3)),
            ipv4=[
                Ipv4Assignment(
                    id=pool.block_id * 1000 + int(address.rsplit(".", 1)[1]),
                    address=address,
                    block_id=pool.block_id,
                    order=order,
                )
                for order, address in enumerate(addresses, start=1)
            ],
            firewall_rulesets=spec.firewall_rulesets,
            firewall_enabled=bool(spec.firewall_rulesets),
            asset_groups=spec.asset_groups,
            additional_disks=spec.additional_disks,
            backup_plan_id=spec.package.backup_plan_id,
        )
        self.servers[server_id] = server
        return server

    def start_build(self, server: Server, spec: BuildSpec) -> str:
        """Queue an OS install and return the generated root password (never stored)."""
        now = self.now()
        timing = self.timing
        fails = False
        if timing.fail_next > 0:
            timing.fail_next -= 1
            fails = True
        elif timing.fail_ratio > 0 and self.rng.random() < timing.fail_ratio:
            fails = True
        server.previous_built = server.built_at(now)
        building_at = after(now, timing.queued_s)
        server.build = BuildRecord(
            requested_at=now,
            building_at=building_at,
            complete_at=after(building_at, timing.build_s),
            fails=fails,
            template_id=spec.template.id,
            ssh_key_ids=spec.ssh_key_ids,
            ipv6=spec.ipv6,
            swap=spec.swap,
            fail_shape=timing.fail_shape,
        )
        if spec.name is not None:
            server.name = spec.name
        if spec.hostname is not None:
            server.hostname = spec.hostname
        if spec.vnc is not None:
            server.vnc_enabled = spec.vnc
        server.updated = now
        server.last_task_at = now
        return self.random_secret(16)

    def queue_task(self, server: Server, action: str, error: str | None = None) -> QueueTask:
        """Queue a hypervisor job that finishes `timing.power_s` from now."""
        now = self.now()
        task = QueueTask(
            id=self.next_queue_id,
            server_id=server.id,
            hypervisor_id=server.hypervisor_id,
            action=action,
            started=now,
            finish_at=after(now, self.timing.power_s),
            error=error,
        )
        self.next_queue_id += 1
        self.queue[task.id] = task
        server.last_task_at = now
        return task

    def delete_server(self, server: Server, delay_min: int) -> None:
        """Delete now, or mark the server to vanish once the clock passes the delay."""
        if delay_min == 0:
            del self.servers[server.id]
        else:
            server.delete_at = self.now() + timedelta(minutes=delay_min)

    def add_ssh_key(self, user: User, name: str, public_key: str) -> SshKey:
        """Store a public key for `user`."""
        key = SshKey(self.next_ssh_key_id, user.id, name, public_key, self.now())
        self.next_ssh_key_id += 1
        self.ssh_keys[key.id] = key
        return key

    def add_backup(self, server: Server, *, complete: bool = True) -> Backup:
        """Record a backup of `server` taken now (the API cannot make one; tests and the demo
        use this)."""
        backup = Backup(self.next_backup_id, server.id, self.now(), complete=complete)
        self.next_backup_id += 1
        self.backups.append(backup)
        return backup

    def random_secret(self, length: int) -> str:
        """A throwaway credential (VNC password, wss token) from the seeded data RNG."""
        alphabet = string.ascii_letters + string.digits
        secret = "".join(self._data_rng.choice(alphabet) for _ in range(length))
        self.issued_secrets.append(secret)
        return secret


def _fault_kind(value: object) -> FaultKind:
    if isinstance(value, str) and value in FAULT_KINDS:
        return cast(FaultKind, value)
    raise ValueError(f"kind must be one of {FAULT_KINDS}")
