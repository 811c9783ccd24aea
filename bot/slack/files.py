"""Fetching a file a user attached in Slack, with the bot token, only from Slack's own hosts."""

from __future__ import annotations

from urllib.parse import urlsplit

import aiohttp
from pydantic import SecretStr

from bot.slack.deps import Download, DownloadError

__all__ = ["slack_downloader"]


def slack_downloader(
    token: SecretStr | None, *, api_url: str, max_bytes: int, timeout_s: float = 2.0
) -> Download:
    """A `Download` for files hosted by Slack (or the test double at `api_url`).

    The timeout keeps a modal submission inside Slack's 3-second answer.
    """
    api_host = urlsplit(api_url).hostname or ""

    async def download(url: str) -> tuple[bytes, str]:
        host = urlsplit(url).hostname or ""
        if not (host == api_host or host == "slack.com" or host.endswith(".slack.com")):
            raise DownloadError("That file is not hosted by Slack; attach it again.")
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        timeout = aiohttp.ClientTimeout(total=timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(url, headers=headers, allow_redirects=True) as response,
            ):
                if response.status != 200:
                    raise DownloadError(
                        f"Slack answered HTTP {response.status} for the file; attach it again."
                    )
                body = await response.content.read(max_bytes + 1)
                return body, response.headers.get("Content-Type", "")
        except (aiohttp.ClientError, TimeoutError) as error:
            raise DownloadError(
                f"I could not download the file from Slack ({error.__class__.__name__}); "
                "attach it again."
            ) from error

    return download
