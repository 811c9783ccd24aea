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
        1: Hypervisor(
            id=1,
            name="prg-hv1",
            group_id=1,
            ip="192.0.2.2",
            hostname="prg-hv1.example.com",
            created=at,
            networks=[HypervisorNetwork(10, "br0", {1, 2})],
            ipv4_pool=_pool("192.0.2", 1, 100, 50),
            ipv6_prefix="2001:db8:1",
            max_servers=30,
            max_cpu=32,
            max_memory_mb=20480,
            max_storage_gb=500,
        ),
        2: Hypervisor(
            id=2,
            name="prg-hv2",
            group_id=1,
            ip="192.0.2.3",
            hostname="prg-hv2.example.com",
            created=at,
            networks=[HypervisorNetwork(11, "br0", {1, 2})],
            ipv4_pool=_pool("192.0.2", 2, 150, 50),
            ipv6_prefix="2001:db8:2",
            max_servers=30,
            max_cpu=32,
            max_memory_mb=20480,
            max_storage_gb=500,
        ),
        3: Hypervisor(
            id=3,
            name="ams-hv1",
            group_id=2,
            ip="198.51.100.2",
            hostname="ams-hv1.example.com",
            created=at,
            networks=[HypervisorNetwork(20, "br0", {1, 3})],
            ipv4_pool=_pool("198.51.100", 3, 100, 60),
            ipv6_prefix="2001:db8:3",
            max_servers=60,
            max_cpu=64,
            max_memory_mb=40960,
            max_storage_gb=1000,
        ),
        4: Hypervisor(
            id=4,
            name="fra-hv1",
            group_id=3,
            ip="203.0.113.2",
            hostname="fra-hv1.example.com",
            created=at,
            networks=[HypervisorNetwork(30, "br0", {1})],
            ipv4_pool=_pool("203.0.113", 4, 100, 50),
            ipv6_prefix="2001:db8:4",
            max_servers=30,
            max_cpu=32,
            max_memory_mb=20480,
            max_storage_gb=500,
            maintenance=True,
        ),
    }
    all_templates = [1, 2, 3, 4, 5]
    state.packages = {
        1: Package(
            id=1,
            name="Small",
            description="1 vCPU, 1 GB RAM, 25 GB disk",
            created=at,
            memory_mb=1024,
            storage_gb=25,
            traffic_gb=1000,
            cpu_cores=1,
            network_speed_in=125000,
            network_speed_out=125000,
            primary_network_profile=1,
            primary_storage_profile=1,
            template_ids=list(all_templates),
        ),
        2: Package(
            id=2,
            name="Medium",
            description="2 vCPU, 4 GB RAM, 80 GB disk",
            created=at,
            memory_mb=4096,
            storage_gb=80,
            traffic_gb=2000,
            cpu_cores=2,
            network_speed_in=125000,
            network_speed_out=125000,
            primary_network_profile=1,
            primary_storage_profile=1,
            template_ids=list(all_templates),
        ),
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
