"""The connection test behind `vfbot check` and `/vf check`: token, permissions, and the
configured package, group and owner, ending in a dry-run create.

The permission steps read one thing from each area of the API vfbot uses (docs/virtfusion-api.md,
"API token permissions"), so a token that is missing one fails here, not in the middle of a
request. Write permissions cannot be probed without changing something; the dry-run create is
the one write that is safe to try.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from bot.provisioning.plan import EngineDefaults
from bot.virtfusion import (
    CreateServerBody,
    InvalidRequestError,
    NotFoundError,
    VirtFusionClient,
    VirtFusionError,
)

__all__ = ["CheckStep", "Outcome", "check_panel"]


class Outcome(StrEnum):
    """How one step went; `NOTE` passed with something worth saying."""

    PASSED = "passed"
    NOTE = "note"
    NOT_FOUND = "not_found"  # the configured id is not on the panel
    REFUSED = "refused"  # the dry run was refused; `detail` is the panel's words
    PANEL_ERROR = "panel_error"  # `error` says what the panel did


@dataclass(frozen=True)
class CheckStep:
    """One step of the check; surfaces word the failures (`error` is the panel's error)."""

    label: str
    outcome: Outcome
    detail: str = ""
    error: VirtFusionError | None = None

    @property
    def passed(self) -> bool:
        return self.outcome in (Outcome.PASSED, Outcome.NOTE)


async def check_panel(client: VirtFusionClient, defaults: EngineDefaults | None) -> list[CheckStep]:
    """Each step in order, stopping at the first failure; `defaults` adds the package, group
    and dry-run steps."""
    results: list[CheckStep] = []
    steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("API token accepted (GET /connect)", client.connect),
        ("token can read compute resources", client.probe_compute_scope),
    ]
    if defaults is not None:
        package_id, user_id = defaults.package_id, defaults.user_id

        async def owner_reads() -> None:
            await client.user_servers(user_id)
            await client.ssh_keys(user_id)

        steps += [
            (
                f"package {package_id} exists (VIRTFUSION_PACKAGE_ID)",
                lambda: client.package(package_id),
            ),
            (
                "token can read the package's OS templates",
                lambda: client.package_templates(package_id),
            ),
            (
                f"user {user_id} exists (VIRTFUSION_USER_ID); token can read its servers and keys",
                owner_reads,
            ),
        ]
        default_group = defaults.default_group_id
        if default_group is not None:
            steps.append(
                (
                    f"hypervisor group {default_group} exists (VIRTFUSION_HYPERVISOR_GROUP_ID)",
                    lambda: client.group(default_group),
                )
            )
        steps += [
            (
                f"hypervisor group {group_id} exists (VIRTFUSION_FAILOVER_GROUP_IDS)",
                functools.partial(client.group, group_id),
            )
            for group_id in defaults.failover_group_ids
        ]
    for label, step in steps:
        try:
            await step()
        except NotFoundError:
            results.append(CheckStep(label, Outcome.NOT_FOUND))
            return results
        except VirtFusionError as error:
            results.append(CheckStep(label, Outcome.PANEL_ERROR, error=error))
            return results
        results.append(CheckStep(label, Outcome.PASSED))
    if defaults is None:
        return results
    group_id = defaults.default_group_id
    if group_id is None:
        groups = [g async for g in client.groups()]
        if not groups:
            results.append(
                CheckStep(
                    "hypervisor groups", Outcome.NOT_FOUND, "the panel has no hypervisor groups"
                )
            )
            return results
        group_id = groups[0].id
        names = ", ".join(f"{g.name} ({g.id})" for g in groups)
        results.append(
            CheckStep(
                "VIRTFUSION_HYPERVISOR_GROUP_ID is not set",
                Outcome.NOTE,
                f"requests must name a hypervisor_group. Groups: {names}",
            )
        )
    label = (
        f"user {defaults.user_id} can get package {defaults.package_id} servers in group "
        f"{group_id} (dry run)"
    )
    probe = CreateServerBody(
        package_id=defaults.package_id,
        user_id=defaults.user_id,
        hypervisor_group_id=group_id,
        network_profile=defaults.default_network_profile_id,
    )
    try:
        await client.validate_server(probe)
    except InvalidRequestError as error:
        results.append(CheckStep(label, Outcome.REFUSED, str(error.detail or error), error))
        return results
    except VirtFusionError as error:
        results.append(CheckStep(label, Outcome.PANEL_ERROR, error=error))
        return results
    results.append(CheckStep(label, Outcome.PASSED))
    return results
