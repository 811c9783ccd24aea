"""The demo data a fresh PanelState starts with (tabled in the package docstring); no logic."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.sandbox._models import (
    Hypervisor,
    HypervisorGroup,
    HypervisorNetwork,
    Ipv4Pool,
    NetworkProfile,
    Package,
    SshKey,
    Template,
    TemplateGroup,
    User,
)

if TYPE_CHECKING:
    from bot.sandbox._state import PanelState

SEEDED_AT = datetime(2024, 6, 1, 12, 0, 0, tzinfo=UTC)

# Syntactically valid but fake ed25519 keys (32 zero-ish bytes); they open nothing.
_KEY_BODY = "AAAAC3NzaC1lZDI1NTE5AAAAI"


def _fake_key(tag: str, fill: str) -> str:
    return f"ssh-ed25519 {_KEY_BODY}{fill * 43} {tag}"


def _pool(prefix: str, block_id: int, first: int, count: int) -> Ipv4Pool:
    return Ipv4Pool(
        block_id=block_id,
        addresses=[f"{prefix}.{n}" for n in range(first, first + count)],
        gateway=f"{prefix}.1",
        netmask="255.255.255.0",
        resolver1=f"{prefix}.53",
        resolver2=f"{prefix}.54",
    )


def _hypervisor(
    id: int,
    name: str,
    group_id: int,
    ip: str,
    network: HypervisorNetwork,
    first_ip: int,
    ips: int,
    *,
    scale: int = 1,
    maintenance: bool = False,
) -> Hypervisor:
    """A demo hypervisor: hostname, IPv4 pool (block `id`, in the subnet of `ip`) and IPv6 prefix
    follow from the rest; `scale` multiplies the base capacity (30 servers, 32 CPUs, 20 GiB, 500
    GB)."""
    return Hypervisor(
        id=id,
        name=name,
        group_id=group_id,
        ip=ip,
        hostname=f"{name}.example.com",
        created=SEEDED_AT,
        networks=[network],
        ipv4_pool=_pool(ip.rsplit(".", 1)[0], id, first_ip, ips),
        ipv6_prefix=f"2001:db8:{id}",
        max_servers=30 * scale,
        max_cpu=32 * scale,
        max_memory_mb=20480 * scale,
        max_storage_gb=500 * scale,
        maintenance=maintenance,
    )


def _package(
    id: int, name: str, cpus: int, memory_gb: int, disk_gb: int, traffic_gb: int
) -> Package:
    """A demo package offering every demo template on the first network and storage profiles."""
    return Package(
        id=id,
        name=name,
        description=f"{cpus} vCPU, {memory_gb} GB RAM, {disk_gb} GB disk",
        created=SEEDED_AT,
        memory_mb=memory_gb * 1024,
        storage_gb=disk_gb,
        traffic_gb=traffic_gb,
        cpu_cores=cpus,
        network_speed_in=125000,
        network_speed_out=125000,
        primary_network_profile=1,
        primary_storage_profile=1,
        template_ids=[1, 2, 3, 4, 5],
    )


def seed_demo_data(state: PanelState) -> None:
    """Fill an empty state with the documented demo users, hypervisors, packages and keys."""
    at = SEEDED_AT
    state.users = {
        1: User(1, "vfbot service", "vfbot@example.com", 1, at, admin=False),
        2: User(2, "Alice", "alice@example.com", 2, at),
    }
    state.groups = {
        1: HypervisorGroup(1, "Prague", "Prague, CZ", at, default=True, icon="cz.svg"),
        2: HypervisorGroup(2, "Amsterdam", "Amsterdam, NL", at, icon="nl.svg"),
        3: HypervisorGroup(3, "Frankfurt", "Frankfurt, DE (all in maintenance)", at, icon="de.svg"),
    }
    state.network_profiles = {
        1: NetworkProfile(1, "Public"),
        2: NetworkProfile(2, "Public (Prague)"),
        3: NetworkProfile(3, "Public (Amsterdam)"),
        4: NetworkProfile(4, "Unused"),
    }
    # Bridge ids (10, 11, 20, 30) deliberately differ from profile ids (1-4), see reference §4.
    state.hypervisors = {
        1: _hypervisor(1, "prg-hv1", 1, "192.0.2.2", HypervisorNetwork(10, "br0", {1, 2}), 100, 50),
        2: _hypervisor(2, "prg-hv2", 1, "192.0.2.3", HypervisorNetwork(11, "br0", {1, 2}), 150, 50),
        3: _hypervisor(
            3, "ams-hv1", 2, "198.51.100.2", HypervisorNetwork(20, "br0", {1, 3}), 100, 60, scale=2
        ),
        4: _hypervisor(
            4,
            "fra-hv1",
            3,
            "203.0.113.2",
            HypervisorNetwork(30, "br0", {1}),
            100,
            50,
            maintenance=True,
        ),
    }
    state.packages = {
        1: _package(1, "Small", 1, 1, 25, 1000),
        2: _package(2, "Medium", 2, 4, 80, 2000),
    }
    state.template_groups = {
        1: TemplateGroup(1, "Ubuntu", "Ubuntu Server", "ubuntu.png"),
        2: TemplateGroup(2, "Debian", "Debian GNU/Linux", "debian.png"),
        3: TemplateGroup(3, "AlmaLinux", "AlmaLinux OS", "almalinux.png"),
    }
    state.templates = {
        1: Template(1, 1, "Ubuntu", "22.04", "Server", "Jammy Jellyfish", "ubuntu.png"),
        2: Template(2, 1, "Ubuntu", "24.04", "Server", "Noble Numbat", "ubuntu.png"),
        3: Template(3, 2, "Debian", "12", "Bookworm", "Debian 12", "debian.png"),
        4: Template(4, 3, "AlmaLinux", "9", "Minimal", "AlmaLinux 9", "almalinux.png"),
        5: Template(
            5,
            2,
            "Debian",
            "10",
            "Buster",
            "Debian 10 (end of life)",
            "debian.png",
            eol=True,
            eol_date="2024-06-30",
            eol_warning=True,
        ),
    }
    state.ssh_keys = {
        1: SshKey(1, 1, "default", _fake_key("default@vfbot", "A"), at),
        2: SshKey(2, 1, "ops-team", _fake_key("ops@vfbot", "B"), at),
        3: SshKey(3, 2, "alice", _fake_key("alice@laptop", "C"), at),
    }
    state.storage_profiles = {1: "Local (file)"}
    state.firewall_rulesets = {1, 2, 3}
    state.asset_groups = {1}
    state.backup_plans = {1: "Daily", 2: "Weekly"}
