"""The HTTP side of the Slack app: `POST /slack/events` (signed), `/healthz` and `/readyz`."""

from __future__ import annotations

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.health import ReadinessCheck

__all__ = ["make_web_app"]


def make_web_app(
    bolt: AsyncApp, checks: dict[str, ReadinessCheck], *, events_path: str = "/slack/events"
) -> web.Application:
    """One aiohttp application for both modes (Socket Mode simply receives no POSTs)."""

    async def slack_events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        return await to_aiohttp_response(await bolt.async_dispatch(bolt_request))

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_: web.Request) -> web.Response:
        results = {name: await check() for name, check in checks.items()}
        ready = all(ok for ok, _ in results.values())
        body = {
            "status": "ready" if ready else "not ready",
            "checks": {
                name: {"ok": ok, "detail": detail} for name, (ok, detail) in results.items()
            },
        }
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application(client_max_size=2 * 1024 * 1024)
    app.router.add_post(events_path, slack_events)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    return app
