"""Strict parsing of create/build/ssh-key bodies into specs; raises ValidationError, no HTTP.

Messages follow Laravel 10's default validator wording ("The package id field is required.");
the panel's own texts are UNKNOWN except "Invalid network profile. The specified profile is
not in use" (reference §4). Ids must be JSON integers: a string id is a client bug and fails.
"""

from __future__ import annotations

import re
from typing import TypeVar

from bot.sandbox._models import AdditionalDisk, Server, Template, User
from bot.sandbox._state import BuildSpec, CreateSpec, PanelState, ValidationError

NOT_IN_USE = "Invalid network profile. The specified profile is not in use"
NO_SUCH_PROFILE = "Invalid network profile. The specified profile does not exist"
SWAP_CHOICES = (256, 512, 768, 1, 1.5, 2, 3, 4, 5, 6, 8)
_KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
T = TypeVar("T")

_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")


def _words(field: str) -> str:
    """Laravel's attribute name: `packageId` -> `package id`."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r" \1", field).lower()


class _Fields:
    """Collects per-field errors while reading an untrusted JSON object."""

    def __init__(self, body: object) -> None:
        self.body: dict[str, object] = body if isinstance(body, dict) else {}
        self.errors: list[str] = []

    def present(self, name: str) -> bool:
        return self.body.get(name) is not None

    def _typed(self, name: str, kind: type[T], must_be: str, *, required: bool = False) -> T | None:
        """The field when it is a `kind` (a boolean is no integer); None when absent or not."""
        value = self.body.get(name)
        if value is None:
            if required:
                self.errors.append(f"The {_words(name)} field is required.")
            return None
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            self.errors.append(f"The {_words(name)} field must be {must_be}.")
            return None
        return value

    def int_(self, name: str, *, required: bool = False, minimum: int | None = None) -> int | None:
        value = self._typed(name, int, "an integer", required=required)
        if value is not None and minimum is not None and value < minimum:
            self.errors.append(f"The {_words(name)} field must be at least {minimum}.")
            return None
        return value

    def bool_(self, name: str) -> bool | None:
        return self._typed(name, bool, "true or false")

    def str_(self, name: str, *, max_length: int = 255) -> str | None:
        value = self._typed(name, str, "a string")
        if value is not None and len(value) > max_length:
            self.errors.append(
                f"The {_words(name)} field must not be greater than {max_length} characters."
            )
            return None
        return value

    def int_list(self, name: str) -> list[int] | None:
        value = self._typed(name, list, "an array")
        if value is None:
            return None
        out: list[int] = []
        for index, item in enumerate(value):
            if isinstance(item, bool) or not isinstance(item, int):
                self.errors.append(f"The {name}.{index} field must be an integer.")
            else:
                out.append(item)
        return out if len(out) == len(value) else None

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationError(self.errors)


def parse_create(state: PanelState, body: object) -> CreateSpec:
    """Validate a `POST /servers` body and apply package defaults; capacity is checked later."""
    f = _Fields(body)
    package_id = f.int_("packageId", required=True)
    user_id = f.int_("userId", required=True)
    group_id = f.int_("hypervisorId", required=True)
    ipv4 = f.int_("ipv4", minimum=0)
    storage = f.int_("storage", minimum=1)
    traffic = f.int_("traffic", minimum=0)
    # A floor of 128 MB catches the GB-for-MB unit bug (reference §2.4); the real floor is UNKNOWN.
    memory = f.int_("memory", minimum=128)
    cpu_cores = f.int_("cpuCores", minimum=1)
    speed_in = f.int_("networkSpeedInbound", minimum=0)
    speed_out = f.int_("networkSpeedOutbound", minimum=0)
    storage_profile = f.int_("storageProfile", minimum=1)
    network_profile = f.int_("networkProfile", minimum=0)
    firewall = f.int_list("firewallRulesets")
    asset_groups = f.int_list("hypervisorAssetGroups")
    extra: list[tuple[bool | None, int | None, int | None]] = [
        (
            f.bool_(f"additionalStorage{n}Enable"),
            f.int_(f"additionalStorage{n}Profile", minimum=1),
            f.int_(f"additionalStorage{n}Capacity", minimum=1),
        )
        for n in (1, 2)
    ]
    f.raise_if_any()

    errors: list[str] = []
    package = state.packages.get(package_id) if package_id is not None else None
    user = state.users.get(user_id) if user_id is not None else None
    group = state.groups.get(group_id) if group_id is not None else None
    if package is None:
        errors.append("The selected package id is invalid.")
    elif not package.enabled:
        errors.append(f"Package {package.name} is disabled.")
    if user is None:
        errors.append("The selected user id is invalid.")
    if group is None:
        errors.append("The selected hypervisor id is invalid.")
    elif not group.enabled:
        errors.append(f"Hypervisor group {group.name} is disabled.")
    if errors or package is None or user is None or group is None:
        raise ValidationError(errors)

    storage_profile = storage_profile or package.primary_storage_profile
    if storage_profile not in state.storage_profiles:
        errors.append("Invalid storage profile.")

    # The package's primaryNetworkProfile applies when none is given (reference §4).
    profile_id = network_profile or package.primary_network_profile
    if profile_id not in state.network_profiles:
        errors.append(NO_SUCH_PROFILE)
    elif not any(h.uses_profile(profile_id) for h in state.group_hypervisors(group.id)):
        errors.append(NOT_IN_USE)

    rulesets = _id_set(firewall, state.firewall_rulesets, "firewall ruleset", errors)
    assets = _id_set(asset_groups, state.asset_groups, "hypervisor asset group", errors)

    disks: list[AdditionalDisk] = []
    for n, (enable, disk_profile, capacity) in enumerate(extra, start=1):
        if not enable:
            continue
        if capacity is None:
            errors.append(f"The additional storage{n} capacity field is required.")
            continue
        disk_profile = disk_profile or package.primary_storage_profile
        if disk_profile not in state.storage_profiles:
            errors.append(f"Invalid storage profile for additional storage {n}.")
            continue
        disks.append(AdditionalDisk(disk_profile, capacity))
    if errors:
        raise ValidationError(errors)

    return CreateSpec(
        package=package,
        user=user,
        group=group,
        ipv4=1 if ipv4 is None else ipv4,
        storage_gb=storage or package.storage_gb,
        traffic_gb=package.traffic_gb if traffic is None else traffic,
        memory_mb=memory or package.memory_mb,
        cpu_cores=cpu_cores or package.cpu_cores,
        network_speed_in=package.network_speed_in if speed_in is None else speed_in,
        network_speed_out=package.network_speed_out if speed_out is None else speed_out,
        storage_profile=storage_profile,
        network_profile=profile_id,
        firewall_rulesets=rulesets,
        asset_groups=assets,
        additional_disks=disks,
    )


def _id_set(ids: list[int] | None, known: set[int], what: str, errors: list[str]) -> list[int]:
    """`-1` forces none (reference §2.4); otherwise every id must exist."""
    if ids is None or -1 in ids:
        return []
    for item in ids:
        if item not in known:
            errors.append(f"The selected {what} {item} is invalid.")
    return sorted(set(ids))


def parse_build(state: PanelState, server: Server, body: object) -> BuildSpec:
    """Validate a `POST /servers/{id}/build` body against the server's package and owner."""
    f = _Fields(body)
    os_id = f.int_("operatingSystemId", required=True)
    name = f.str_("name")
    hostname = f.str_("hostname", max_length=253)
    ssh_keys = f.int_list("sshKeys")
    vnc = f.bool_("vnc")
    ipv6 = f.bool_("ipv6")
    f.bool_("email")
    swap_raw = f.body.get("swap")
    f.raise_if_any()

    errors: list[str] = []
    template: Template | None = None
    if os_id is not None:
        template = state.templates.get(os_id)
        package = state.packages.get(server.package_id)
        if template is None:
            errors.append("The selected operating system id is invalid.")
        elif package is not None and os_id not in package.template_ids:
            errors.append("The selected operating system is not available for this server.")
    if hostname is not None and not _HOSTNAME.match(hostname):
        errors.append("The hostname field format is invalid.")
    for key_id in ssh_keys or []:
        key = state.ssh_keys.get(key_id)
        if key is None:
            errors.append(f"The selected ssh key {key_id} is invalid.")
        elif key.user_id != server.owner_id:
            errors.append(f"SSH key {key_id} does not belong to the server owner.")
    swap: float | None = None
    if swap_raw is not None:
        if (
            isinstance(swap_raw, bool)
            or not isinstance(swap_raw, int | float)
            or swap_raw not in SWAP_CHOICES
        ):
            errors.append("The selected swap is invalid.")
        else:
            swap = float(swap_raw)
    if errors or template is None:
        raise ValidationError(errors)
    return BuildSpec(
        template=template,
        name=name,
        hostname=hostname,
        ssh_key_ids=list(ssh_keys or []),
        vnc=vnc,
        ipv6=bool(ipv6),
        swap=swap,
    )


def parse_ssh_key(state: PanelState, body: object) -> tuple[User, str, str]:
    """Validate a `POST /ssh_keys` body; returns (owner, name, public key)."""
    f = _Fields(body)
    user_id = f.int_("userId", required=True)
    name = f.str_("name")
    public_key = f.str_("publicKey", max_length=16384)
    if name is None and "name" not in f.body:
        f.errors.append("The name field is required.")
    if public_key is None and "publicKey" not in f.body:
        f.errors.append("The public key field is required.")
    f.raise_if_any()
    errors: list[str] = []
    user = state.users.get(user_id) if user_id is not None else None
    if user is None:
        errors.append("The selected user id is invalid.")
    if not name:
        errors.append("The name field is required.")
    key = (public_key or "").strip()
    parts = key.split()
    if len(parts) < 2 or parts[0] not in _KEY_TYPES:
        errors.append("The public key is not a valid SSH public key.")
    elif user is not None and any(
        k.user_id == user.id and k.public_key.split()[:2] == parts[:2]
        for k in state.ssh_keys.values()
    ):
        # Whether the real panel rejects duplicates is UNKNOWN; rejecting forces lookup-first.
        errors.append("The public key has already been added for this user.")
    if errors or user is None or name is None:
        raise ValidationError(errors)
    return user, name, key
