"""`make demo`: run vfbot against the sandbox panel with no accounts, then stop the sandbox.

Starts the sandbox on a free loopback port in a background thread, points a throw-away
configuration at it (SQLite in a temporary directory), and runs `vfbot db upgrade` (creating the
database), `vfbot check`, `vfbot hypervisors`, `vfbot create -f examples/create.json --yes`, then
`vfbot worker --until-idle` carries the request out while the panel sends it VirtFusion's
webhooks (`server.create`, `server.build`), and one day-2 change:
`vfbot rebuild test-server debian-12 --yes` (sent once, followed to built).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path

from bot.cli import main as vfbot
from bot.sandbox import BuildTiming, PanelState, SandboxServer, running_sandbox

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "create.json"


@contextmanager
def sandbox_in_thread(
    state: PanelState, *, webhook_url: str | None = None, webhook_token: str | None = None
) -> Iterator[SandboxServer]:
    """Serve the sandbox from its own event loop; yields the server (its `url`, and the
    webhooks it `hooks.sent`)."""
    ready: Future[SandboxServer] = Future()
    stop: asyncio.Event | None = None
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        nonlocal stop
        stop = asyncio.Event()
        async with running_sandbox(
            state, webhook_url=webhook_url, webhook_token=webhook_token
        ) as server:
            ready.set_result(server)
            await stop.wait()

    def run() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as error:  # noqa: BLE001  # handed to the caller via the future
            if not ready.done():
                ready.set_exception(error)
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="sandbox", daemon=True)
    thread.start()
    server = ready.result(timeout=30)
    try:
        yield server
    finally:
        if stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(timeout=30)


def _free_port() -> int:
    """A free loopback port, for the worker to receive the panel's webhooks on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def main(*, fast: bool = False) -> int:
    """Run the demo; `fast` (for tests) makes builds and polling near-instant."""
    timing = BuildTiming(queued_s=0.0, build_s=0.1) if fast else BuildTiming(queued_s=1, build_s=3)
    state = PanelState(timing=timing)
    port, token = _free_port(), secrets.token_urlsafe(24)
    with (
        tempfile.TemporaryDirectory(prefix="vfbot-demo-") as tmp,
        sandbox_in_thread(
            state,
            webhook_url=f"http://127.0.0.1:{port}/virtfusion/webhook",
            webhook_token=token,
        ) as sandbox,
    ):
        os.environ.update(
            {
                "VIRTFUSION_HOST": sandbox.url,
                "VIRTFUSION_WEBHOOK_TOKEN": token,
                "VIRTFUSION_API_TOKEN": state.token,
                "VIRTFUSION_USER_ID": "1",
                "VIRTFUSION_PACKAGE_ID": "1",
                "VIRTFUSION_HYPERVISOR_GROUP_ID": "1",
                "DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/demo.db",
                "VF_POLL_INTERVAL": "0.05" if fast else "1",
            }
        )
        previous = os.getcwd()
        os.chdir(tmp)  # no developer .env is read
        steps = [
            ["db", "upgrade"],
            ["check"],
            ["hypervisors"],
            ["create", "-f", str(EXAMPLE), "--yes"],
            ["worker", "--until-idle", "--metrics-port", str(port)],
            ["rebuild", "test-server", "debian-12", "--yes"],
            ["servers"],
        ]
        for argv in steps:
            print(f"\n$ vfbot {' '.join(argv)}", flush=True)
            code = vfbot(argv)
            if argv[0] == "worker":  # nobody listens for webhooks any more
                sandbox.hooks.url = None
                sent = [f"{d.event} ({d.answered})" for d in sandbox.hooks.sent]
                print(f"The panel sent {len(sent)} webhook(s) to the worker: {', '.join(sent)}.")
            if code != 0:
                print(f"vfbot {argv[0]} exited with {code}", file=sys.stderr)
                os.chdir(previous)
                return code
        os.chdir(previous)
    print("\nDemo finished: the sandbox panel is stopped and its data discarded.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
