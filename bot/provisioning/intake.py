"""The one way a request comes in: parse → plan → submit, for Slack, the CLI and tests alike.

Each step can be used on its own (the create modal parses its form, the CLI shows the plan
before it asks), and `submit_request` runs all three.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.provisioning.errors import PlanError
from bot.provisioning.lifetimes import LifetimePolicy, lifetime_problems, server_lifetimes
from bot.provisioning.model import RequestRecord
from bot.provisioning.plan import Plan
from bot.provisioning.planner import Planner
from bot.provisioning.reading import parse_request
from bot.provisioning.request import ProvisionRequest, RequestLimits
from bot.provisioning.requests import RequestService

__all__ = ["Intake", "Origin"]


@dataclass(frozen=True)
class Origin:
    """Who asked, from where, and under which idempotency key."""

    key: str
    requester: str
    source: str  # "slack" or "cli"
    channel: str | None = None


class Intake:
    """Turns request JSON into a stored, planned request."""

    def __init__(
        self,
        planner: Planner,
        requests: RequestService,
        limits: RequestLimits,
        lifetimes: LifetimePolicy | None = None,
    ) -> None:
        self.planner = planner
        self.limits = limits
        self.lifetimes = lifetimes or LifetimePolicy()
        self._requests = requests

    def parse(self, raw: bytes | str | dict[str, object]) -> ProvisionRequest:
        """The request, or RequestError naming every problem by its JSON path."""
        return parse_request(raw, self.limits)

    async def plan(self, request: ProvisionRequest, *, admin: bool = False) -> Plan:
        """The checked plan, with each server's lifetime, or PlanError / a VirtFusionError;
        never creates anything. Only an `admin` may ask for more than VF_MAX_LIFETIME."""
        problems = lifetime_problems(request, self.lifetimes, admin=admin)
        if problems:
            raise PlanError(problems)
        plan = await self.planner.plan(request)
        lifetimes = server_lifetimes(request, self.lifetimes)
        if not any(lifetimes.values()):
            return plan
        servers = [
            server.model_copy(update={"lifetime_s": lifetimes.get(server.name)})
            for server in plan.servers
        ]
        return plan.model_copy(update={"servers": servers})

    async def submit(
        self,
        request: ProvisionRequest,
        plan: Plan,
        origin: Origin,
        *,
        approval_required: bool,
        approval_ttl_s: float | None = None,
    ) -> tuple[RequestRecord, bool]:
        """Store the planned request once per key; True when it is new."""
        return await self._requests.submit(
            key=origin.key,
            requester=origin.requester,
            source=origin.source,
            request=request,
            plan=plan,
            approval_required=approval_required,
            approval_ttl_s=approval_ttl_s,
            channel=origin.channel,
        )

    async def submit_request(
        self,
        raw: bytes | str | dict[str, object],
        origin: Origin,
        *,
        needs_approval: Callable[[Plan], bool] | None = None,
        approval_ttl_s: float | None = None,
        admin: bool = False,
    ) -> tuple[RequestRecord, bool]:
        """Parse, plan and submit; raises RequestError, PlanError or a VirtFusionError.

        `needs_approval` decides from the plan (none: it runs at once).
        """
        request = self.parse(raw)
        plan = await self.plan(request, admin=admin)
        return await self.submit(
            request,
            plan,
            origin,
            approval_required=needs_approval(plan) if needs_approval else False,
            approval_ttl_s=approval_ttl_s,
        )
