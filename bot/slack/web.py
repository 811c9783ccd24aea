"""The HTTP side of the Slack app: `POST /slack/events` (signed), beside the operators' routes
(`/healthz`, `/readyz`, `/metrics`) that the composition root passes in."""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

__all__ = ["make_web_app"]


def make_web_app(
    bolt: AsyncApp, routes: Iterable[web.RouteDef] = (), *, events_path: str = "/slack/events"
) -> web.Application:
    """One aiohttp application for both modes (Socket Mode simply receives no POSTs)."""

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post(events_path, slack_events)
    app.router.add_routes(list(routes))
    return app
