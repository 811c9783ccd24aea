"""Fetching a file a user attached in Slack, with the bot token, only from Slack's own hosts.

The bot token goes only to `https://files.slack.com` on port 443 (where `url_private_download`
points) or to the exact origin of SLACK_API_URL (https, or a loopback test double). Redirects are
followed by hand, each hop checked the same way, so a file can never send the token, or vfbot
itself, anywhere else.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urljoin, urlsplit

import aiohttp
from pydantic import SecretStr

from bot.slack.deps import Download, DownloadError

__all__ = ["SLACK_FILE_HOSTS", "slack_downloader"]

SLACK_FILE_HOSTS: Final = ("files.slack.com",)
"""Where Slack serves `url_private_download` (https, port 443)."""

_MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_CHUNK: Final = 64 * 1024
_DEFAULT_PORTS: Final = {"https": 443, "http": 80}

Origin = tuple[str, str, int]


def _origin(url: str) -> Origin | None:
    """(scheme, host, port) of a URL, or None for one vfbot never fetches: no host, another
    scheme, a bad port, or a user name or password in it."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    if parts.username is not None or parts.password is not None:
        return None
    return scheme, parts.hostname.lower(), port or _DEFAULT_PORTS[scheme]


async def _read(response: aiohttp.ClientResponse, max_bytes: int) -> bytes:
    """The body, up to `max_bytes + 1` bytes (one more than allowed says "too big").

    `StreamReader.read(n)` returns what has arrived so far, not n bytes: read until the end.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(_CHUNK):
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            break
    return b"".join(chunks)[: max_bytes + 1]


def slack_downloader(
    token: SecretStr | None, *, api_url: str, max_bytes: int, timeout_s: float = 2.0
) -> Download:
    """A `Download` for files hosted by Slack (or the test double at `api_url`).

    The timeout keeps a modal submission inside Slack's 3-second answer.
    """
    allowed = {("https", host, 443) for host in SLACK_FILE_HOSTS}
    api_origin = _origin(api_url)
    if api_origin is not None:
        allowed.add(api_origin)
    headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    async def download(url: str) -> tuple[bytes, str]:
        if _origin(url) not in allowed:
            raise DownloadError("That file is not hosted by Slack; attach it again.")
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                for _ in range(_MAX_REDIRECTS + 1):
                    async with session.get(url, headers=headers, allow_redirects=False) as response:
                        if response.status in _REDIRECTS:
                            url = urljoin(url, response.headers.get("Location", ""))
                            if _origin(url) not in allowed:
                                raise DownloadError(
                                    "Slack sent the download somewhere other than its file "
                                    "servers, so I did not follow it; attach the file again."
                                )
                            continue
                        if response.status != 200:
                            raise DownloadError(
                                f"Slack answered HTTP {response.status} for the file; "
                                "attach it again."
                            )
                        body = await _read(response, max_bytes)
                        return body, response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DownloadError(
                f"I could not download the file from Slack ({error.__class__.__name__}); "
                "attach it again."
            ) from error
        raise DownloadError(
            f"Slack redirected the download more than {_MAX_REDIRECTS} times; attach it again."
        )

    return download
