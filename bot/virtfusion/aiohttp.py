"""`VirtFusionClient` over aiohttp: the only module that knows about sockets."""

from __future__ import annotations

from typing import Any

import aiohttp
from pydantic import SecretStr

from bot import __version__
from bot.virtfusion._client import VirtFusionClient
from bot.virtfusion._exceptions import ConnectError, PanelTimeoutError, TransportError
from bot.virtfusion._sansio import HttpRequest, RawResponse

__all__ = ["USER_AGENT", "AiohttpVirtFusionClient"]

USER_AGENT = f"vfbot/{__version__} (+https://github.com/vfbot/vfbot)"


class AiohttpVirtFusionClient(VirtFusionClient):
    """Talks to `api_url` (ending in `/api/v1`) with one `ClientSession` for its whole life."""

    def __init__(
        self,
        api_url: str,
        token: SecretStr,
        *,
        timeout_s: float = 30.0,
        session: aiohttp.ClientSession | None = None,
        **options: Any,  # forwarded to VirtFusionClient (rate limit, retry policy, clock, ...)
    ) -> None:
        super().__init__(**options)
        self._api_url = api_url.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(timeout_s, 10.0))
        self._session = session
        self._owns_session = session is None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def close(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
            self._session = None

    async def _send(self, request: HttpRequest) -> RawResponse:
        headers = {
            "Authorization": f"Bearer {self._token.get_secret_value()}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        url = self._api_url + request.path
        where = f"{request.method} {request.path}"
        try:
            async with self._get_session().request(
                request.method,
                url,
                params=list(request.query),
                json=request.json,
                headers=headers,
                timeout=self._timeout,
                allow_redirects=False,
            ) as response:
                body = await response.read()
                return RawResponse(
                    response.status, {k.lower(): v for k, v in response.headers.items()}, body
                )
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            raise ConnectError(
                f"{where}: cannot connect to the panel ({exc.__class__.__name__})",
                method=request.method,
                path=request.path,
            ) from exc
        except (TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise PanelTimeoutError(
                f"{where}: no answer from the panel within {self._timeout.total:g} s",
                method=request.method,
                path=request.path,
            ) from exc
        except aiohttp.ClientError as exc:
            raise TransportError(
                f"{where}: the connection failed mid-request ({exc.__class__.__name__})",
                method=request.method,
                path=request.path,
            ) from exc
