"""Panel choices for the create modal (groups, templates, keys, package sizes), cached briefly.

The modal must open within Slack's 3-second trigger window, so it opens with cached choices when
they are fresh, or in a loading state that is filled in once the panel has answered.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.provisioning.lifetimes import LifetimePolicy
from bot.provisioning.plan import EngineDefaults
from bot.slack.blocks.modal import ModalChoices
from bot.slack.cache import TtlCache
from bot.virtfusion import VirtFusionClient

__all__ = ["ChoicesCache"]


class ChoicesCache:
    """Loads `ModalChoices` from the panel at most once per `ttl_s` (one load in flight)."""

    def __init__(
        self,
        client: VirtFusionClient,
        defaults: EngineDefaults,
        *,
        max_instances: int,
        ttl_s: float,
        clock: Callable[[], float],
        lifetimes: LifetimePolicy | None = None,
    ) -> None:
        self._client, self._defaults, self._max_instances = client, defaults, max_instances
        self._lifetimes = lifetimes or LifetimePolicy()
        self._cache: TtlCache[str, ModalChoices] = TtlCache(
            lambda _: self._load(), ttl_s=ttl_s, clock=clock
        )

    def peek(self) -> ModalChoices | None:
        """The cached choices if still fresh, without waiting."""
        return self._cache.peek("")

    async def get(self) -> ModalChoices:
        """Fresh choices, loading them from the panel if needed (raises VirtFusionError)."""
        return await self._cache.get("")

    async def _load(self) -> ModalChoices:
        client = self._client
        package = await client.package(self._defaults.package_id)
        groups = [g async for g in client.groups() if g.enabled]
        templates = await client.package_templates(self._defaults.package_id)
        keys = await client.ssh_keys(self._defaults.user_id)
        choices = ModalChoices(
            package_id=package.id,
            package_name=package.name,
            package_memory_mb=package.memory_mb,
            package_disk_gb=package.storage_gb,
            package_cpu=package.cpu_cores,
            groups=[(g.id, g.name) for g in groups],
            default_group_id=self._defaults.default_group_id,
            templates=[(t.id, t.label) for t in templates if not t.eol]
            + [(t.id, f"{t.label} (end of life)") for t in templates if t.eol],
            ssh_keys=sorted(k.name for k in keys if k.enabled),
            max_instances=self._max_instances,
            lifetimes=self._lifetimes,
        )
        return choices
