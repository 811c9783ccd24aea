"""Pure renderers: sandbox records -> the panel's JSON field names (reference §2); no I/O."""

from __future__ import annotations

import calendar
from datetime import UTC, datetime

from bot.sandbox._models import (
    COMPLETE,
    Hypervisor,
    HypervisorGroup,
    Package,
    QueueTask,
    Server,
    SshKey,
    Template,
    User,
)
from bot.sandbox._state import PanelState

JsonObject = dict[str, object]


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 with a UTC offset, second precision (Laravel's `toIso8601String`)."""
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")


def _gauge(units: str, maximum: int, allocated: int) -> JsonObject:
    """One resource as the spec's examples show it: `free` is max - allocated (negative when a
    server limit of 0, "none", is exceeded) and `percent` null when there is no maximum."""
    return {
        "units": units,
        "max": maximum,
        "allocated": allocated,
        "free": maximum - allocated,
        "percent": round(allocated * 100 / maximum, 1) if maximum else None,
    }


def user_json(user: User) -> JsonObject:
    """`GET /users/{extRelationId}/byExtRelation` data (the password is never returned)."""
    return {
        "id": user.id,
        "admin": user.admin,
        "extRelationId": user.ext_relation_id,
        "relStr": user.rel_str,
        "name": user.name,
        "email": user.email,
        "timezone": user.timezone,
        "suspended": user.suspended,
        "twoFactorAuth": False,
        "created": iso(user.created),
        "updated": iso(user.created),
    }


def group_json(group: HypervisorGroup) -> JsonObject:
    """`GET /compute/hypervisors/groups/{id}` data."""
    return {
        "id": group.id,
        "name": group.name,
        "label": group.label,
        "description": group.description,
        "distributionType": group.distribution_type,
        "enabled": group.enabled,
        "default": group.default,
        "created": iso(group.created),
        "updated": iso(group.created),
    }


def hypervisor_json(state: PanelState, hypervisor: Hypervisor) -> JsonObject:
    """`GET /compute/hypervisors/{id}` data: no usage numbers, as on the real panel."""
    group = state.groups[hypervisor.group_id]
    created = iso(hypervisor.created)
    return {
        "id": hypervisor.id,
        "commissioned": hypervisor.commissioned,
        "ip": hypervisor.ip,
        "ipAlt": None,
        "hostname": hypervisor.hostname,
        "port": hypervisor.port,
        "sshPort": hypervisor.ssh_port,
        "name": hypervisor.name,
        "maintenance": hypervisor.maintenance,
        "enabled": hypervisor.enabled,
        "nfType": hypervisor.nf_type,
        "group": {
            "id": group.id,
            "name": group.name,
            "description": group.description,
            "default": group.default,
            "enabled": group.enabled,
            "distributionType": group.distribution_type,
            "created": iso(group.created),
            "updated": iso(group.created),
        },
        "encryptedToken": "eyJpdiI6InNhbmRib3gifQ==",
        "maxServers": hypervisor.max_servers,
        "maxCpu": hypervisor.max_cpu,
        "maxMemory": hypervisor.max_memory_mb,
        "networks": [
            {
                "id": net.id,
                "type": net.type,
                "bridge": net.bridge,
                "primary": net.primary,
                "default": net.default,
                "created": created,
                "updated": created,
            }
            for net in hypervisor.networks
        ],
        "storage": [
            {
                "id": hypervisor.id,
                "name": "Local",
                "path": "/home/vf-data/disk",
                "storageType": 1,
                "enabled": True,
                "primary": True,
                "capacity": hypervisor.max_storage_gb,
            }
        ],
        "created": created,
        "updated": created,
    }


def hypervisor_resources_json(state: PanelState, hypervisor: Hypervisor) -> JsonObject:
    """The `resources` block: capacity computed from live allocations."""
    usage = state.usage(hypervisor)
    return {
        "servers": _gauge("#", hypervisor.max_servers, usage.servers),
        "memory": _gauge("MB", hypervisor.max_memory_mb, usage.memory_mb),
        "cpuCores": _gauge("#", hypervisor.max_cpu, usage.cpu_cores),
        "localStorage": {
            "enabled": 1,  # an integer in the spec, where other flags are booleans
            "name": "Local",
            "storageType": 1,
            **_gauge("GB", hypervisor.max_storage_gb, usage.storage_gb),
        },
        "otherStorage": [],
        "network": {"total": {"ipv4": {"free": len(state.free_ipv4(hypervisor))}}},
    }


def group_resources_row(state: PanelState, hypervisor: Hypervisor) -> JsonObject:
    """One row of `GET /compute/hypervisors/groups/{id}/resources`."""
    return {
        "hypervisor": {
            "id": hypervisor.id,
            "name": hypervisor.name,
            "enabled": hypervisor.enabled,
            "prohibit": hypervisor.prohibit,
            "accept": hypervisor.accept,
            # A boolean here, although `/compute/hypervisors` sends the same field as 3.
            "commissioned": bool(hypervisor.commissioned),
        },
        "resources": hypervisor_resources_json(state, hypervisor),
    }


def package_json(package: Package) -> JsonObject:
    """`GET /packages/{id}` data."""
    return {
        "id": package.id,
        "name": package.name,
        "description": package.description,
        "enabled": package.enabled,
        "created": iso(package.created),
        "memory": package.memory_mb,
        "primaryStorage": package.storage_gb,
        "traffic": package.traffic_gb,
        "cpuCores": package.cpu_cores,
        "primaryNetworkSpeedIn": package.network_speed_in,
        "primaryNetworkSpeedOut": package.network_speed_out,
        "primaryDiskType": package.primary_disk_type,
        "backupPlanId": package.backup_plan_id,
        "primaryStorageReadBytesSec": 0,
        "primaryStorageWriteBytesSec": 0,
        "primaryStorageReadIopsSec": 0,
        "primaryStorageWriteIopsSec": 0,
        "primaryStorageProfile": package.primary_storage_profile,
        "primaryNetworkProfile": package.primary_network_profile,
    }


def template_json(template: Template) -> JsonObject:
    """One template inside a distribution group."""
    return {
        "id": template.id,
        "name": template.name,
        "version": template.version,
        "variant": template.variant,
        "arch": template.arch,
        "description": template.description,
        "icon": template.icon,
        "eol": template.eol,
        "eol_date": template.eol_date,
        "eol_warning": template.eol_warning,
        "deploy_type": template.deploy_type,
        "vnc": template.vnc,
        "type": template.type,
    }


def template_groups_json(state: PanelState, template_ids: list[int]) -> list[JsonObject]:
    """Distribution groups holding the allowed templates; empty groups are left out."""
    out: list[JsonObject] = []
    for group in sorted(state.template_groups.values(), key=lambda g: g.id):
        members = [
            template_json(state.templates[t])
            for t in sorted(template_ids)
            if t in state.templates and state.templates[t].group_id == group.id
        ]
        if members:
            out.append(
                {
                    "id": group.id,
                    "name": group.name,
                    "description": group.description,
                    "icon": group.icon,
                    "templates": members,
                }
            )
    return out


def ssh_key_json(key: SshKey) -> JsonObject:
    """`GET /ssh_keys/{id}` data."""
    return {
        "id": key.id,
        "name": key.name,
        "publicKey": key.public_key,
        "type": key.type,
        "enabled": key.enabled,
        "created": iso(key.created),
        "updated": iso(key.created),
    }


def _interface_json(state: PanelState, server: Server) -> JsonObject:
    hypervisor = state.hypervisors[server.hypervisor_id]
    pool = hypervisor.ipv4_pool
    network = next((n for n in hypervisor.networks if n.id == server.hypervisor_network_id), None)
    ipv6: list[JsonObject] = []
    if server.build is not None and server.build.ipv6:
        subnet = f"{hypervisor.ipv6_prefix}:{server.id:x}::"
        ipv6.append(
            {
                "subnet": subnet,
                "cidr": 64,
                "gateway": f"{hypervisor.ipv6_prefix}::1",
                "addresses": [f"{subnet}1"],
                "addressesDetailed": [{"address": f"{subnet}1", "rdns": None}],
                "enabled": True,
            }
        )
    return {
        "id": server.id,
        "name": "eth0",
        "mac": server.mac,
        "type": "public",
        "order": 1,
        "enabled": True,
        "networkProfile": server.network_profile,
        "hypervisorNetwork": server.hypervisor_network_id,
        "hypervisorConnectivity": None
        if network is None
        else {
            "id": network.id,
            "type": network.type,
            "bridge": network.bridge,
            "primary": network.primary,
            "default": network.default,
        },
        "inAverage": server.network_speed_in,
        "outAverage": server.network_speed_out,
        "firewallEnabled": server.firewall_enabled,
        "ipv4": [
            {
                "id": ip.id,
                "address": ip.address,
                "gateway": pool.gateway,
                "netmask": pool.netmask,
                "resolver1": pool.resolver1,
                "resolver2": pool.resolver2,
                "rdns": None,
                "enabled": True,
                "order": ip.order,
                "blockId": ip.block_id,
            }
            for ip in server.ipv4
        ],
        "ipv6": ipv6,
    }


def _resources_json(server: Server) -> JsonObject:
    return {
        "memory": server.memory_mb,
        "storage": server.storage_gb,
        "traffic": server.traffic_gb,
        "cpuCores": server.cpu_cores,
    }


def _vnc_short_json(state: PanelState, server: Server) -> JsonObject:
    return {
        "ip": state.hypervisors[server.hypervisor_id].ip,
        "port": 5900 + server.id,
        "enabled": server.vnc_enabled,
    }


def _pending_actions(server: Server, now: datetime) -> list[JsonObject]:
    disks: list[JsonObject] = []
    if server.commission_status(now) != COMPLETE:
        disks = [
            {
                "id": index,
                "action": f"Create HDD (sd{chr(ord('b') + index - 1)})",
                "requires": ["boot", "restart"],
                "collected": False,
                "complete": False,
                "failed": False,
                "payload": {"capacity": disk.capacity_gb, "profile": disk.profile},
            }
            for index, disk in enumerate(server.additional_disks, start=1)
        ]
    changes: list[JsonObject] = [
        {
            "id": len(disks) + index,
            "action": change.action,
            "requires": list(change.requires),
            "collected": False,
            "complete": False,
            "failed": False,
            "payload": {},
            "created": iso(change.created),
        }
        for index, change in enumerate(server.pending, start=1)
    ]
    return disks + changes


def server_json(state: PanelState, server: Server) -> JsonObject:
    """The full single-server object of `GET /servers/{id}` (never with the root password)."""
    now = state.now()
    status = server.commission_status(now)
    owner = state.users.get(server.owner_id)
    hypervisor = state.hypervisors[server.hypervisor_id]
    group = state.groups[hypervisor.group_id]
    backup_name = state.backup_plans.get(server.backup_plan_id)
    storage: list[JsonObject] = [
        {
            "id": server.id * 10,
            "name": "Primary",
            "capacity": server.storage_gb,
            "primary": True,
            "enabled": True,
            "profile": server.storage_profile,
            "status": 3,  # an integer; 3 on every created disk in the spec's examples
            "drive": "a",
            "bus": None,
        }
    ]
    storage += [
        {
            "id": server.id * 10 + index,
            "name": f"Additional {index}",
            "capacity": disk.capacity_gb,
            "primary": False,
            # The create example's additional disk waits for a boot: disabled, status 1.
            "enabled": status == COMPLETE,
            "profile": disk.profile,
            "status": 3 if status == COMPLETE else 1,
            "drive": chr(ord("a") + index),
            "bus": None,
        }
        for index, disk in enumerate(server.additional_disks, start=1)
    ]
    owned_keys = server.build.ssh_key_ids if server.build is not None else []
    out: JsonObject = {
        **_server_head(server, now),
        "arch": 1,
        "migrateLevel": 0,
        "deleteLevel": 0 if server.delete_at is None else 1,
        "configLevel": 0,
        "rebuild": False,
        "suspended": server.suspended,
        "protected": server.protected,
        "destroyable": True,
        "buildFailed": server.build_failed(now),
        "built": iso(server.built_at(now)),
        "created": iso(server.created),
        "updated": iso(server.updated),
        "owner": None if owner is None else user_json(owner),
        "hypervisor": {
            "id": hypervisor.id,
            "name": hypervisor.name,
            "hostname": hypervisor.hostname,
            "groupId": group.id,
            "maintenance": hypervisor.maintenance,
            "enabled": hypervisor.enabled,
            "group": {"name": group.name, "icon": group.icon},  # no `id` here: see `groupId`
            "resources": hypervisor_resources_json(state, hypervisor),
        },
        "settings": {
            # The create example has `true` and 0 before any build; the id is the template.
            "osTemplateInstall": True,
            "osTemplateInstallId": 0 if server.build is None else server.build.template_id,
            "backupPlan": server.backup_plan_id,
            "uefi": False,
            "cloudInit": True,
            "cloudInitType": 1,
            "resources": _resources_json(server),
            "config": {},
        },
        "cpu": {
            "cores": server.cpu_cores,
            "type": "host",
            "shares": 1024,
            "throttle": server.cpu_throttle,
            "topology": {"enabled": False, "sockets": 1, "cores": server.cpu_cores, "threads": 1},
        },
        "storage": storage,
        "network": {"interfaces": [_interface_json(state, server)], "secondaryInterfaces": []},
        "tasks": {
            "active": state.locked(server),
            "lastOn": iso(server.last_task_at),
            "actions": {"pending": _pending_actions(server, now)},
        },
        "vnc": _vnc_short_json(state, server),
        "backupPlan": None
        if backup_name is None
        else {"id": server.backup_plan_id, "name": backup_name},
        "sshKeys": [
            {"id": k, "name": state.ssh_keys[k].name} for k in owned_keys if k in state.ssh_keys
        ],
        # The spec's only example is `false` (asked with remoteState=false); what the panel
        # answers to remoteState=true is undocumented, so the sandbox invents nothing either.
        "remoteState": False,
    }
    return out


def server_simple_json(server: Server, now: datetime) -> JsonObject:
    """A `GET /servers?type=simple` row: note `commissioned`, not `commissionStatus`."""
    return {
        "id": server.id,
        "uuid": server.uuid,
        "name": server.name,
        "commissioned": server.commission_status(now),
        "owner": server.owner_id,
        "hypervisorId": server.hypervisor_id,
        "suspended": server.suspended,
        "protected": server.protected,
        "updated": iso(server.updated),
        "created": iso(server.created),
    }


def _server_head(server: Server, now: datetime) -> JsonObject:
    """The identity and state fields the full server object and the user's rows both begin with."""
    return {
        "id": server.id,
        "ownerId": server.owner_id,
        "hypervisorId": server.hypervisor_id,
        "name": server.name,
        "hostname": server.hostname,
        "commissionStatus": server.commission_status(now),
        "uuid": server.uuid,
        "state": server.state(now),
    }


def server_user_row_json(state: PanelState, server: Server) -> JsonObject:
    """A `GET /servers/user/{userId}` row: partial, and without `created` (reference §2.6)."""
    now = state.now()
    return {
        **_server_head(server, now),
        "rebuild": False,
        "suspended": server.suspended,
        "protected": server.protected,
        "buildFailed": server.build_failed(now),
        "backup_level": 0,
        "backup_plan": server.backup_plan_id or None,
        # Only a console screenshot (base64 PNG); the spec has no OS name anywhere.
        "os": {"screen": ""},
        "server_info": {"show": False, "icon": None, "name": None, "label": None},
        # Unlike the single object's, this `vnc.enabled` is an integer (0) in the spec.
        "vnc": {
            "expose_details": True,
            **_vnc_short_json(state, server),
            "hostname": None,
            "enabled": int(server.vnc_enabled),
        },
        "resources": {**_resources_json(server), "cpu_model": None},
        "network": {"interfaces": [_interface_json(state, server)]},
        "config": {"uefi": False, "bootOrder": ["hd", "cdrom"]},
        "media": {"isoMounted": False, "isoName": ""},
    }


def queue_json(task: QueueTask, now: datetime) -> JsonObject:
    """`GET /queue/{id}` data."""
    finished = task.finished(now)
    failed = finished and task.error is not None
    return {
        "id": task.id,
        "jobId": f"sandbox-{task.id}",
        "job": f"server.{task.action}",
        "hypervisorId": task.hypervisor_id,
        "serverId": task.server_id,
        "action": task.action,
        "queue": "default",
        "started": iso(task.started),
        "updated": iso(task.finish_at if finished else now),
        "finished": iso(task.finish_at) if finished else None,
        "failed": failed,
        "progress": task.progress(now),
        # Present with nulls on success, as in the spec's example.
        "errors": {
            "exception": {
                "stringable": False,
                "errors": [],
                "type": "Exception" if failed else None,
                "trace": None,
                "message": task.error if failed else None,
            }
        },
        "primaryActions": [
            {
                "type": f"server.{task.action}",
                "dataType": "object",
                "data": {"success": finished and not failed},
                "created": iso(task.started),
                "updated": iso(task.finish_at if finished else now),
            }
        ],
        "subActions": [],
    }


def vnc_json(state: PanelState, server: Server) -> JsonObject:
    """The `vnc` object of `GET|POST /servers/{id}/vnc`; holds secrets, never log it."""
    hypervisor = state.hypervisors[server.hypervisor_id]
    token = f"wss-{server.id}-{server.vnc_password}" if server.vnc_enabled else None
    return {
        "ip": hypervisor.ip,
        "hostname": hypervisor.hostname,
        "port": 5900 + server.id,
        "password": server.vnc_password if server.vnc_enabled else None,
        # Relative to the panel, as in the spec's example (`/vnc/?token=...`).
        "wss": {"token": token, "url": f"/vnc/?token={token}" if token is not None else None},
        "enabled": server.vnc_enabled,
    }


def traffic_json(server: Server, now: datetime) -> JsonObject:
    """`GET /servers/{id}/traffic` data: the current month's bytes (`server.traffic_bytes`, or
    a deterministic small amount), the limit as the server's traffic allowance."""
    last_day = calendar.monthrange(now.year, now.month)[1]
    start = datetime(now.year, now.month, 1, tzinfo=UTC)
    end = datetime(now.year, now.month, last_day, 23, 59, 59, tzinfo=UTC)
    if server.traffic_bytes is not None:
        tx = server.traffic_bytes // 4
        rx = server.traffic_bytes - tx
    else:
        rx = (server.id % 97 + 1) * 123_456_789
        tx = (server.id % 89 + 1) * 23_456_789
    return {
        "monthly": [
            {
                "month": 1,  # the spec numbers periods, it does not name calendar months
                # Zone-less, as in the spec's example (the timezone is UNKNOWN).
                "start": start.strftime("%Y-%m-%d %H:%M:%S"),
                "end": end.strftime("%Y-%m-%d %H:%M:%S"),
                "rx": rx,
                "tx": tx,
                "total": rx + tx,
                "limit": server.traffic_gb,
                "blocks": [],
            }
        ]
    }
