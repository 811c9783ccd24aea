"""The VirtFusion error tree; raised by the client, never by callers.

    VirtFusionError
    ├── TransportError            the request did not get an HTTP answer
    │   ├── ConnectError          provably never reached the panel (refused, DNS): safe to repeat
    │   └── PanelTimeoutError     sent, or maybe sent, and no answer in time
    │       (and TransportError itself for a connection dropped mid-flight)
    ├── AmbiguousResultError      a create/build that may or may not have happened on the panel
    ├── DecodeError               an answer that is not the JSON we expect
    └── ApiError(status, messages)
        ├── AuthError             401: token missing, invalid or expired (the panel sends no body)
        ├── ForbiddenError        403: the token lacks a scope
        ├── NotFoundError         404
        ├── ConflictError         409
        ├── InvalidRequestError   422: `errors` list or dict, or `msg`
        ├── LockedError           423: the server has a task running
        ├── RateLimitedError      429 (`retry_after_s`)
        └── PanelError            5xx

Every message names the method, the path, the status and the panel's own words. None of them can
contain the API token: the token is never part of a path, a query or an error text.
"""

from __future__ import annotations

__all__ = [
    "AmbiguousResultError",
    "ApiError",
    "AuthError",
    "ConflictError",
    "ConnectError",
    "DecodeError",
    "ForbiddenError",
    "InvalidRequestError",
    "LockedError",
    "NotFoundError",
    "PanelError",
    "PanelTimeoutError",
    "RateLimitedError",
    "TransportError",
    "VirtFusionError",
]


class VirtFusionError(Exception):
    """Base class of everything the VirtFusion client raises."""

    retryable: bool = False

    def __init__(self, message: str, *, method: str = "", path: str = "") -> None:
        super().__init__(message)
        self.method = method
        self.path = path


class TransportError(VirtFusionError):
    """No HTTP answer: the connection broke after the request may have been sent."""

    retryable = True


class ConnectError(TransportError):
    """The connection could not be opened (refused, DNS, TLS): the panel never saw the request."""


class PanelTimeoutError(TransportError):
    """The panel did not answer within the configured timeout."""


class AmbiguousResultError(VirtFusionError):
    """A non-repeatable call (create, build) may or may not have taken effect on the panel.

    The caller must reconcile by reading the panel's state; repeating the call could create a
    second server.
    """

    def __init__(self, message: str, *, method: str, path: str, cause: VirtFusionError) -> None:
        super().__init__(message, method=method, path=path)
        self.cause = cause


class DecodeError(VirtFusionError):
    """The panel answered with something that is not the JSON shape we expect."""


class ApiError(VirtFusionError):
    """The panel answered with an error status; `retry_after_s` is its Retry-After hint, which
    only a 429 (`RateLimitedError`) carries."""

    def __init__(
        self,
        message: str,
        *,
        method: str,
        path: str,
        status: int,
        messages: tuple[str, ...] = (),
        retry_after_s: float | None = None,
    ) -> None:
        super().__init__(message, method=method, path=path)
        self.status = status
        self.messages = messages
        self.retry_after_s = retry_after_s

    @property
    def detail(self) -> str:
        """The panel's own words, joined; empty when it gave none."""
        return "; ".join(self.messages)


class AuthError(ApiError):
    """401: the API token is missing, invalid or expired."""


class ForbiddenError(ApiError):
    """403: the API token is valid but lacks the permission (scope) this endpoint needs."""


class NotFoundError(ApiError):
    """404: the record named in the path does not exist (or no longer does)."""


class ConflictError(ApiError):
    """409: the request conflicts with the current state of the record."""


class InvalidRequestError(ApiError):
    """422: the panel rejected the request's content; `messages` has its reasons."""


class LockedError(ApiError):
    """423: the server is locked by a running task; waiting and repeating is the remedy."""

    retryable = True


class RateLimitedError(ApiError):
    """429: too many requests for this token; `retry_after_s` is the panel's hint, if any."""

    retryable = True


class PanelError(ApiError):
    """5xx: the panel failed; 500/502/503/504 are worth repeating for safe calls."""

    @property
    def retryable(self) -> bool:  # type: ignore[override]  # depends on the status
        return self.status in (500, 502, 503, 504)
