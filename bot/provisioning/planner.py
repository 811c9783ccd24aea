"""Gather the panel facts a request needs (cached per run), plan, then dry-run every body."""

from __future__ import annotations

import json
import logging
import re

from bot.provisioning.errors import PlanError
from bot.provisioning.plan import (
    PROFILE_FROM_ENV,
    PROFILE_FROM_REQUEST,
    EngineDefaults,
    PanelFacts,
    Plan,
    ServerPlan,
    make_plan,
    resolve_group_list,
)
from bot.provisioning.request import Problem, ProvisionRequest
from bot.virtfusion import (
    InvalidRequestError,
    NotFoundError,
    VirtFusionClient,
)

__all__ = ["Planner"]

logger = logging.getLogger("bot.provisioning.planner")


class Planner:
    """Plans requests against one panel; every panel lookup happens at most once per `plan()`."""

    def __init__(self, client: VirtFusionClient, defaults: EngineDefaults) -> None:
        self._client = client
        self._defaults = defaults

    async def gather(self, request: ProvisionRequest) -> PanelFacts:
        """Read what planning needs: package, groups, templates, keys, hypervisors, capacity."""
        client = self._client
        try:
            package = await client.package(self._defaults.package_id)
        except NotFoundError as error:
            raise PlanError(
                [
                    Problem(
                        "",
                        f"VIRTFUSION_PACKAGE_ID={self._defaults.package_id} is not a package on "
                        "the panel; an operator must fix the setting (see `vfbot check`)",
                    )
                ]
            ) from error
        facts = PanelFacts(
            package=package,
            groups=[g async for g in client.groups()],
            templates=await client.package_templates(package.id),
            ssh_keys=await client.ssh_keys(self._defaults.user_id)
            if any(i.ssh_key_name for i in request.instances)
            else [],
        )
        for hypervisor_id in {i.hypervisor_id for i in request.instances if i.hypervisor_id}:
            try:
                facts.hypervisors[hypervisor_id] = await client.hypervisor(hypervisor_id)
            except NotFoundError:
                facts.hypervisors[hypervisor_id] = None
        group_ids: set[int] = set()
        for index, instance in enumerate(request.instances):
            groups, _, _ = resolve_group_list(instance, index, facts, self._defaults)
            group_ids.update(g.id for g in groups)
        for group_id in sorted(group_ids):
            facts.capacity[group_id] = await client.group_capacity(group_id)
        return facts

    async def plan(self, request: ProvisionRequest) -> Plan:
        """A checked plan, or PlanError naming each problem; never creates anything.

        A server with fallback groups whose dry run is refused in one group is planned again
        without that group (`PanelFacts.refused`), until every body passes or a server has no
        group left; each round refuses at least one more (entry, group) pair, so it ends.
        """
        facts = await self.gather(request)
        while True:
            plan = make_plan(request, facts, self._defaults)
            refused = await self.dry_run(plan)
            if not refused:
                return plan
            facts.refused.update(refused)

    async def dry_run(self, plan: Plan) -> dict[tuple[int, int], str]:
        """`POST /servers?dryRun=true` once per distinct create body; map refusals to fields.

        Returns the refusals of servers that may still go elsewhere, by (entry, group); raises
        PlanError for refusals of servers that may not.
        """
        sharing: dict[str, list[ServerPlan]] = {}
        for server in plan.servers:
            key = json.dumps(server.create_body.to_json(), sort_keys=True)
            sharing.setdefault(key, []).append(server)
        problems: list[Problem] = []
        refused: dict[tuple[int, int], str] = {}
        for servers in sharing.values():
            body = servers[0].create_body
            try:
                await self._client.validate_server(body)
            except InvalidRequestError as error:
                # Instance entries may share a body; each must learn of the refusal, not just
                # the first, or fixing one entry only reveals the next on the following run.
                explained: set[int] = set()
                for server in servers:
                    if server.fallback_groups or server.passed_over:
                        refused[(server.instance_index, server.group_id)] = _words(error)
                    elif server.instance_index not in explained:
                        explained.add(server.instance_index)
                        problems.append(_explain_refusal(server, plan, error))
        if problems:
            problems.sort(key=lambda p: _instance_of(p.path))
            raise PlanError(problems)
        return refused


def _instance_of(path: str) -> int:
    """Sort key: the instance index a problem path starts with (request-wide paths first)."""
    match = re.match(r"instances\[(\d+)\]", path)
    return int(match[1]) + 1 if match else 0


def _words(error: InvalidRequestError) -> str:
    return error.detail or str(error)


def _explain_refusal(server: ServerPlan, plan: Plan, error: InvalidRequestError) -> Problem:
    """Turn the panel's 422 into a problem on the request field that caused it."""
    words = _words(error)
    path = f"instances[{server.instance_index}]"
    where = f"group {server.group_name} (id {server.group_id})"
    if "network profile" in words.casefold():
        profile = server.network_profile
        if server.network_profile_source == PROFILE_FROM_REQUEST:
            field, origin = f"{path}.network.profile_id", f"network profile {profile}"
        elif server.network_profile_source == PROFILE_FROM_ENV:
            field, origin = path, f"network profile {profile} (from {PROFILE_FROM_ENV})"
        else:
            field, origin = path, f"package {plan.package_name}'s default network profile"
        return Problem(
            field,
            f"the panel refused {origin} in {where}: “{words}”. Use a profile that is attached to "
            f"a network in {server.group_name}, pick another hypervisor_group, or omit "
            "network.profile_id to use the package's default profile",
        )
    return Problem(
        path,
        f"the panel refused server {server.name} in {where}: “{words}”. Nothing was created; "
        "change the request and try again",
    )
