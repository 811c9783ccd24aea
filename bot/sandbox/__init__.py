"""A faithful in-memory fake of the VirtFusion panel API (aiohttp.web); imports nothing from bot.

Shapes follow the official examples of the VirtFusion API spec (docs/virtfusion-api.md lists
where the spec is silent and what the sandbox does there; tests/sandbox/test_fidelity.py
compares its answers with the examples field by field). Build and task progress is derived from
the injected clock on every read (no background tasks), so tests advance a `FakeClock`.

`PanelState()` seeds this demo data (pass `demo_data=False` for an empty panel):

| kind                | id | name / value                                                        |
|---------------------|----|---------------------------------------------------------------------|
| user                | 1  | "vfbot service" (extRelationId 1), SSH keys 1 "default", 2 "ops-team"|
| user                | 2  | "Alice" (extRelationId 2), SSH key 3 "alice"                        |
| hypervisor group    | 1  | "Prague": hypervisors 1 prg-hv1, 2 prg-hv2 (bridges 10, 11)         |
| hypervisor group    | 2  | "Amsterdam": hypervisor 3 ams-hv1 (bridge 20)                       |
| hypervisor group    | 3  | "Frankfurt": hypervisor 4 fra-hv1 (bridge 30), in maintenance       |
| network profile     | 1  | "Public": Prague, Amsterdam, Frankfurt                              |
| network profile     | 2  | "Public (Prague)": Prague only                                      |
| network profile     | 3  | "Public (Amsterdam)": Amsterdam only                                |
| network profile     | 4  | "Unused": attached to no network                                    |
| package             | 1  | "Small": 1024 MB, 25 GB, 1 core, 1000 GB traffic, profile 1         |
| package             | 2  | "Medium": 4096 MB, 80 GB, 2 cores, 2000 GB traffic, profile 1       |
| OS template         | 1-5| Ubuntu 22.04, Ubuntu 24.04, Debian 12, AlmaLinux 9, Debian 10 (EOL) |
| storage profile     | 1  | "Local (file)"                                                      |
| firewall rulesets   |    | 1, 2, 3; hypervisor asset group 1; backup plans 1 "Daily", 2 "Weekly"|

Capacity: prg-hv1/prg-hv2 each 20480 MB, 500 GB, 32 cores, 30 servers and 50 IPv4
(192.0.2.100-149 / .150-199); ams-hv1 40960 MB, 1000 GB, 64 cores, 60 servers, 60 IPv4
(198.51.100.100-159); fra-hv1 like a Prague node on 203.0.113.100-149. That is 40 "Small"
servers in Prague and in Amsterdam. Every address is from a documentation range (RFC 5737,
2001:db8::/32). New ids: servers from 101, queue tasks from 5001, SSH keys after the seeds.
Tests shrink capacity by mutating records, e.g. `state.hypervisors[3].max_memory_mb = 512`, and
set a server's traffic this month with `state.servers[101].traffic_bytes`.

Admin endpoints (outside `/api/v1`, no auth, no faults, not logged): `GET /_sandbox/log`,
`POST /_sandbox/reset-log`, `GET|POST /_sandbox/faults` and `GET|POST /_sandbox/timing`
(POST takes a JSON object of `Faults` / `BuildTiming` field values; 400 on a bad field), and
`GET|POST /_sandbox/webhook` (`{"url", "token", "every_s"}`: where the panel's webhooks go,
`bot.sandbox._hooks`).
"""

from bot.sandbox._hooks import Delivery, WebhookSender
from bot.sandbox._models import (
    Hypervisor,
    HypervisorGroup,
    HypervisorNetwork,
    NetworkProfile,
    Package,
    QueueTask,
    Server,
    SshKey,
    User,
)
from bot.sandbox._state import (
    BuildTiming,
    CommitThenFail,
    FaultKind,
    Faults,
    LoggedRequest,
    PanelState,
    ScriptedFault,
)
from bot.sandbox.clock import FakeClock
from bot.sandbox.panel import SandboxServer, create_app, running_sandbox, serve

__all__ = [
    "BuildTiming",
    "CommitThenFail",
    "Delivery",
    "FakeClock",
    "FaultKind",
    "Faults",
    "Hypervisor",
    "HypervisorGroup",
    "HypervisorNetwork",
    "LoggedRequest",
    "NetworkProfile",
    "Package",
    "PanelState",
    "QueueTask",
    "SandboxServer",
    "ScriptedFault",
    "Server",
    "SshKey",
    "User",
    "WebhookSender",
    "create_app",
    "running_sandbox",
    "serve",
]
