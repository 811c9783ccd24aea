"""Downloading an attached request file: the bot token only goes to Slack's file host over https
on 443 (or the test double's exact origin), every redirect hop is checked, and files up to the
documented 1 MiB arrive whole."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from pydantic import SecretStr

from bot.slack.deps import DownloadError
from bot.slack.files import slack_downloader

TOKEN = "xoxb-files-test-0123456789"
MIB = 1024 * 1024


@dataclass
class Host:
    """A loopback HTTP server recording who asked for what, with which Authorization."""

    url: str = ""
    seen: list[tuple[str, str]] = field(default_factory=list)
    routes: dict[str, Callable[[], web.StreamResponse]] = field(default_factory=dict)


async def _serve(host: Host) -> web.AppRunner:
    async def handle(request: web.Request) -> web.StreamResponse:
        host.seen.append((request.path, request.headers.get("Authorization", "")))
        if request.path == "/stream":
            # Many small writes: the body arrives in pieces, as a real network delivers it.
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            body = STREAMED
            for start in range(0, len(body), 4096):
                await response.write(body[start : start + 4096])
            await response.write_eof()
            return response
        route = host.routes.get(request.path)
        return route() if route is not None else web.Response(status=404)

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    host.url = f"http://127.0.0.1:{port}"
    return runner


STREAMED = b'{"project_name": "p", "instances": []}' + b" " * (300 * 1024)


@pytest.fixture
async def hosts() -> AsyncIterator[tuple[Host, Host]]:
    """`slack` (the test double's origin, allowed) and `internal` (anything else on loopback)."""
    slack, internal = Host(), Host()
    runners = [await _serve(slack), await _serve(internal)]
    try:
        yield slack, internal
    finally:
        for runner in runners:
            await runner.cleanup()


def _download(slack: Host, max_bytes: int = MIB) -> object:
    return slack_downloader(SecretStr(TOKEN), api_url=f"{slack.url}/api/", max_bytes=max_bytes)


@pytest.mark.parametrize(
    "url",
    [
        "http://files.slack.com/files-pri/T1-F1/download/r.json",  # the token in clear text
        "https://files.slack.com:8443/files-pri/T1-F1/download/r.json",  # another port
        "https://files.slack.com:443@attacker.example/r.json",
        "https://user:pass@files.slack.com/files-pri/T1-F1/download/r.json",
        "https://attacker.example/r.json",
        "https://files.slack.com.attacker.example/r.json",
        "https://slack.com.attacker.example/r.json",
        "https://hooks.slack.com/r.json",  # Slack, but not where files are served
        "ftp://files.slack.com/r.json",
        "https://files.slack.com:99999/r.json",
        "//files.slack.com/r.json",
    ],
)
async def test_urls_off_slacks_file_host_are_refused_before_any_request(
    hosts: tuple[Host, Host], url: str
) -> None:
    slack, _ = hosts
    with pytest.raises(DownloadError, match="not hosted by Slack"):
        await _download(slack)(url)  # type: ignore[operator]


async def test_the_test_doubles_origin_is_exact(hosts: tuple[Host, Host]) -> None:
    slack, internal = hosts
    with pytest.raises(DownloadError, match="not hosted by Slack"):
        await _download(slack)(f"{internal.url}/file")  # type: ignore[operator]
    assert internal.seen == []


async def test_a_redirect_off_the_allowed_hosts_is_not_followed(
    hosts: tuple[Host, Host],
) -> None:
    slack, internal = hosts
    slack.routes["/file"] = lambda: web.Response(
        status=302, headers={"Location": f"{internal.url}/keys"}
    )
    with pytest.raises(DownloadError, match="did not follow it"):
        await _download(slack)(f"{slack.url}/file")  # type: ignore[operator]
    assert internal.seen == []  # the internal address was never fetched, the token never sent


async def test_redirects_on_the_allowed_origin_are_followed_with_the_token(
    hosts: tuple[Host, Host],
) -> None:
    slack, _ = hosts
    slack.routes["/file"] = lambda: web.Response(status=302, headers={"Location": "/moved"})
    slack.routes["/moved"] = lambda: web.Response(body=b"{}", content_type="application/json")
    body, content_type = await _download(slack)(f"{slack.url}/file")  # type: ignore[operator]
    assert (body, content_type) == (b"{}", "application/json")
    assert slack.seen == [("/file", f"Bearer {TOKEN}"), ("/moved", f"Bearer {TOKEN}")]


async def test_a_redirect_loop_ends(hosts: tuple[Host, Host]) -> None:
    slack, _ = hosts
    slack.routes["/file"] = lambda: web.Response(status=302, headers={"Location": "/file"})
    with pytest.raises(DownloadError, match="more than 3 times"):
        await _download(slack)(f"{slack.url}/file")  # type: ignore[operator]
    assert len(slack.seen) == 4


async def test_a_300_kb_file_arrives_whole(hosts: tuple[Host, Host]) -> None:
    slack, _ = hosts
    body, _ = await _download(slack)(f"{slack.url}/stream")  # type: ignore[operator]
    assert body == STREAMED


async def test_a_file_over_the_limit_is_cut_one_byte_past_it(hosts: tuple[Host, Host]) -> None:
    slack, _ = hosts
    body, _ = await _download(slack, max_bytes=1000)(f"{slack.url}/stream")  # type: ignore[operator]
    assert len(body) == 1001  # one more than allowed: the caller says "too big"
