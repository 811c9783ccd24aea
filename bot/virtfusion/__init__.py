"""Async client for the VirtFusion REST API (`/api/v1`); imports nothing else from `bot`.

The aiohttp transport (`AiohttpVirtFusionClient`) is imported when first named: the domain and
the command line's parser use the client's types and errors without loading aiohttp.
"""

from typing import TYPE_CHECKING, Any

from bot.virtfusion._client import CallObserver, RetryPolicy, VirtFusionClient
from bot.virtfusion._day2 import (
    PACKAGE_FLAGS,
    RESET_USERS,
    Backup,
    FirewallState,
    Interface,
    PackageChange,
    PasswordReset,
    PendingAction,
    ServerExtras,
)
from bot.virtfusion._exceptions import (
    AmbiguousResultError,
    ApiError,
    AuthError,
    ConflictError,
    ConnectError,
    DecodeError,
    ForbiddenError,
    InvalidRequestError,
    LockedError,
    NotFoundError,
    PanelError,
    PanelTimeoutError,
    RateLimitedError,
    TransportError,
    VirtFusionError,
)
from bot.virtfusion._models import (
    BuildPhase,
    BuildServerBody,
    CreateServerBody,
    GroupCapacity,
    Hypervisor,
    HypervisorGroup,
    HypervisorResources,
    OsTemplate,
    Package,
    Page,
    PowerAction,
    QueueTask,
    ResourceUsage,
    Server,
    SshKey,
    TrafficMonth,
    VncSession,
    template_label,
)
from bot.virtfusion._sansio import DELETE_DELAY_MAX_MIN, HttpRequest, RawResponse

if TYPE_CHECKING:
    from bot.virtfusion.aiohttp import AiohttpVirtFusionClient

__all__ = [
    "DELETE_DELAY_MAX_MIN",
    "PACKAGE_FLAGS",
    "RESET_USERS",
    "AiohttpVirtFusionClient",
    "AmbiguousResultError",
    "ApiError",
    "AuthError",
    "Backup",
    "BuildPhase",
    "BuildServerBody",
    "CallObserver",
    "ConflictError",
    "ConnectError",
    "CreateServerBody",
    "DecodeError",
    "FirewallState",
    "ForbiddenError",
    "GroupCapacity",
    "HttpRequest",
    "Hypervisor",
    "HypervisorGroup",
    "HypervisorResources",
    "Interface",
    "InvalidRequestError",
    "LockedError",
    "NotFoundError",
    "OsTemplate",
    "Package",
    "PackageChange",
    "Page",
    "PanelError",
    "PanelTimeoutError",
    "PasswordReset",
    "PendingAction",
    "PowerAction",
    "QueueTask",
    "RateLimitedError",
    "RawResponse",
    "ResourceUsage",
    "RetryPolicy",
    "Server",
    "ServerExtras",
    "SshKey",
    "TrafficMonth",
    "TransportError",
    "VirtFusionClient",
    "VirtFusionError",
    "VncSession",
    "template_label",
]


def __getattr__(name: str) -> Any:
    if name == "AiohttpVirtFusionClient":
        from bot.virtfusion.aiohttp import AiohttpVirtFusionClient

        return AiohttpVirtFusionClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
