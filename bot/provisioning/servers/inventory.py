"""Reading servers: vfbot's lists, one server in detail, traffic, groups and the audit log."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime

from bot.provisioning.model import AuditRecord, InstanceRecord
from bot.provisioning.plan import EngineDefaults
from bot.provisioning.ports import ServerQuery
from bot.provisioning.servers.checks import CheckStep, check_panel
from bot.provisioning.servers.model import (
    HypervisorGroupRow,
    ResolvedServer,
    ServerDetail,
    ServerRow,
    TrafficSummary,
)
from bot.provisioning.servers.resolve import gone
from bot.provisioning.transitions import Clock, Context, Service
from bot.virtfusion import (
    NotFoundError,
    OsTemplate,
    Server,
    TrafficMonth,
    VirtFusionClient,
    VirtFusionError,
    template_label,
)

__all__ = ["Inventory", "TemplateNames", "current_month", "hypervisor_groups"]

logger = logging.getLogger("bot.provisioning.servers")


class TemplateNames:
    """Names for `settings.osTemplateInstallId`, from the package's template list (the call
    the planner makes), read at most once per `ttl_s` so naming an OS costs no call per server.

    The spec has no OS name on a server. A template outside the package's list shows as
    `template 49`; when the list cannot be read, the last one read is used.
    """

    def __init__(
        self, client: VirtFusionClient, package_id: int | None, clock: Clock, ttl_s: float = 600
    ) -> None:
        self._client = client
        self._package_id = package_id
        self._clock = clock
        self._ttl_s = ttl_s
        self._templates: list[OsTemplate] = []
        self._read_at: datetime | None = None

    async def label(self, template_id: int | None) -> str:
        """The OS name for a template id; "" when the panel gave none."""
        if template_id is None:
            return ""
        return template_label(template_id, await self._current())

    async def _current(self) -> list[OsTemplate]:
        now = self._clock()
        fresh = self._read_at is not None and (now - self._read_at).total_seconds() < self._ttl_s
        if self._package_id is None or fresh:
            return self._templates
        try:
            self._templates = await self._client.package_templates(self._package_id)
        except VirtFusionError as error:
            logger.warning("cannot read OS template names (%s); showing template ids", error)
            return self._templates
        self._read_at = now
        return self._templates


class Inventory(Service):
    """What vfbot and the panel know about the owner's servers; reads only."""

    def __init__(self, ctx: Context, *, defaults: EngineDefaults | None = None) -> None:
        super().__init__(ctx)
        self._defaults = defaults
        package_id = defaults.package_id if defaults else None
        self._os_names = TemplateNames(ctx.client, package_id, ctx.clock)

    async def list_managed(
        self,
        *,
        requester: str | None = None,
        request_id: int | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[ServerRow], int]:
        """Servers vfbot created (from the database), newest first, and how many in all."""
        async with self._uow() as uow:
            query = ServerQuery(
                requester=requester, request_id=request_id, limit=limit, offset=offset
            )
            instances, total = await uow.instances.list_with_servers(query)
            requests = await uow.requests.get_many({i.request_id for i in instances})
        rows = [
            ServerRow(
                server_id=i.server_id or 0,
                name=i.name,
                request_human_id=i.human_request_id,
                requester=requests[i.request_id].requester if i.request_id in requests else None,
                state=i.state.value,
                group=i.group_label,
                ipv4=tuple(i.ipv4),
            )
            for i in instances
        ]
        return rows, total

    async def list_owner_servers(
        self, *, limit: int = 20, offset: int = 0
    ) -> tuple[list[ServerRow], int]:
        """Every server of vfbot's owner on the panel (newest first, as listed at most a few
        seconds ago), with what vfbot knows."""
        servers = sorted(await self._ctx.listing.recent(), key=lambda s: s.id, reverse=True)
        page = servers[max(offset, 0) : max(offset, 0) + max(limit, 0)]
        async with self._uow() as uow:
            known = await uow.instances.get_by_server_ids([s.id for s in page])
            requests = await uow.requests.get_many({i.request_id for i in known.values()})
        rows = []
        for server in page:
            instance = known.get(server.id)
            request = requests.get(instance.request_id) if instance else None
            rows.append(_owner_row(server, instance, request.requester if request else None))
        return rows, len(servers)

    async def enrich(self, rows: list[ServerRow]) -> list[ServerRow]:
        """Fill `suspended` from the owner's listing (at most a few seconds old); rows the
        panel no longer lists keep None."""
        if not rows:
            return rows
        listing = {s.id: s for s in await self._ctx.listing.recent()}
        return [
            replace(row, suspended=listing[row.server_id].suspended)
            if row.server_id in listing
            else row
            for row in rows
        ]

    async def status(self, resolved: ResolvedServer, *, live: bool = False) -> ServerDetail:
        """The server as the panel reports it; `live` asks the hypervisor for the power state,
        which stays unknown (`running` None) unless the panel's answer proves it."""
        try:
            server = await self._client.server(resolved.server_id, remote_state=live)
        except NotFoundError as error:
            raise gone(resolved) from error
        res = server.resources
        instance = resolved.instance
        hypervisor = server.hypervisor
        return ServerDetail(
            server_id=server.id,
            name=server.name or resolved.name,
            hostname=server.hostname,
            phase=server.phase.value,
            state=server.state,
            group=server.group_name,
            hypervisor=(
                hypervisor.name
                if hypervisor and hypervisor.name
                else str(server.hypervisor_id or "")
            ),
            ipv4=server.ipv4,
            ipv6=server.ipv6,
            memory_mb=res.memory_mb if res else None,
            disk_gb=res.storage_gb if res else None,
            cpu_cores=res.cpu_cores if res else None,
            os=await self._os_names.label(server.os_template_id),
            suspended=server.suspended,
            running=server.running if live else None,
            live=live,
            request_human_id=resolved.request_human_id,
            requester=resolved.request.requester if resolved.request else None,
            built_at=server.built or (instance.finished_at if instance else None),
            expires_at=instance.expires_at if instance else None,
        )

    async def traffic(self, resolved: ResolvedServer) -> TrafficSummary:
        """This month's traffic (the month containing now, else the latest one reported)."""
        try:
            months = await self._client.traffic(resolved.server_id)
        except NotFoundError as error:
            raise gone(resolved) from error
        month = current_month(months, self._clock())
        return TrafficSummary.of(resolved.server_id, resolved.name, month)

    async def hypervisors(self) -> list[HypervisorGroupRow]:
        """Hypervisor groups with free capacity and their hypervisors' names and flags."""
        return await hypervisor_groups(self._client)

    async def check(self) -> list[CheckStep]:
        """The connection test (`vfbot check`, `/vf check`) with the configured defaults."""
        return await check_panel(self._client, self._defaults)

    async def recent_audit(self, n: int = 20) -> list[AuditRecord]:
        """The newest `n` audit entries, newest first."""
        async with self._uow() as uow:
            return await uow.audit.list_recent(limit=max(n, 0))


def _owner_row(server: Server, instance: InstanceRecord | None, requester: str | None) -> ServerRow:
    return ServerRow(
        server_id=server.id,
        name=server.name or (instance.name if instance else "") or "(unnamed)",
        request_human_id=instance.human_request_id if instance else None,
        requester=requester,
        state=instance.state.value if instance else server.phase.value,
        group=server.group_name or (instance.group_label if instance else ""),
        ipv4=server.ipv4 or (tuple(instance.ipv4) if instance else ()),
        suspended=server.suspended,
    )


def current_month(months: list[TrafficMonth], now: datetime) -> TrafficMonth | None:
    """The traffic period containing `now`, else the latest one that has a start, else the
    last one listed (`/vf traffic` and the traffic alerts read the same one)."""
    for month in months:
        if month.start is not None and month.end is not None and month.start <= now <= month.end:
            return month
    dated = [m for m in months if m.start is not None]
    if dated:
        return max(dated, key=lambda m: m.start or now)
    return months[-1] if months else None


async def hypervisor_groups(client: VirtFusionClient) -> list[HypervisorGroupRow]:
    """Every hypervisor group with its free capacity and its hypervisors (behind
    `vfbot hypervisors` and `/vf hypervisors`): one list call each, one capacity call per group."""
    groups = [g async for g in client.groups()]
    hypervisors = [h async for h in client.hypervisors()]
    rows = []
    for group in groups:
        capacity = await client.group_capacity(group.id)
        members = [h for h in hypervisors if h.group_id == group.id]
        rows.append(
            HypervisorGroupRow(
                group_id=group.id,
                name=group.name,
                enabled=group.enabled,
                memory_free_mb=capacity.memory_free_mb,
                storage_free_gb=capacity.storage_free_gb,
                ipv4_free=capacity.ipv4_free,
                hypervisors=tuple(
                    h.name
                    + (" (maintenance)" if h.maintenance else "" if h.enabled else " (disabled)")
                    for h in members
                ),
                maintenance=tuple(h.name for h in members if h.maintenance),
                default=group.default,
            )
        )
    return rows
