"""Day-2, part 2 (issue 13) end to end over signed Slack payloads, the fake Slack and the sandbox:
rebuild (confirmed, approved, sent once, followed in a thread, the password only to whoever
asked), resize, rename, password, firewall, IP addresses (the last one asks twice), backups."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from bot.provisioning.model import OperationState
from bot.slack import ids
from bot.slack.policy import ApprovalRule
from bot.slack.threads import Thread
from tests.slack.conftest import ADMIN, APPROVER, CHANNEL, REQUESTER, SlackHarness, form
from tests.slack.test_e2e_create import _buttons, _text_of
from tests.slack.test_e2e_day2 import (
    STRANGER,
    _confirm_last_modal,
    _server,
    _with_servers,
)

OS = OperationState


class Replies:
    """What vfbot said to single users (response_url posts and ephemeral messages) since the
    last `new()`, in order; the harness keeps the two kinds in separate lists."""

    def __init__(self, h: SlackHarness) -> None:
        self.h = h
        self.seen = (0, 0)

    def _ephemeral(self) -> list[dict[str, Any]]:
        return [c.params for c in self.h.slack.calls_to("chat.postEphemeral")]

    def new(self) -> str:
        responses, ephemeral = self.h.slack.responses, self._ephemeral()
        fresh = responses[self.seen[0] :] + ephemeral[self.seen[1] :]
        self.seen = (len(responses), len(ephemeral))
        return "\n".join(_text_of(r) for r in fresh)


async def _say(h: SlackHarness, said: Replies, text: str, *, user: str = REQUESTER) -> str:
    said.new()
    await h.command(text, user=user)
    return said.new()


async def _confirm(h: SlackHarness, said: Replies, *, user: str = REQUESTER) -> str:
    said.new()
    await _confirm_last_modal(h, user=user)
    return said.new()


def _builds(h: SlackHarness, server_id: int) -> list[Any]:
    return [c.body for c in h.sandbox.state.calls("POST", rf"^/servers/{server_id}/build$")]


async def _op_message(h: SlackHarness, operation_id: int) -> tuple[dict[str, Any], str]:
    """The operation's channel message and its thread's text."""
    posted = await h.runtime.deps.store.message(Thread.OPERATION, operation_id)  # type: ignore[union-attr]
    assert posted is not None
    root = h.slack.message(CHANNEL, posted.ts)
    assert root is not None
    thread = "\n".join(_text_of(m) for m in h.slack.thread(CHANNEL, posted.ts))
    return root, thread


async def _everything_vfbot_kept(h: SlackHarness) -> str:
    async with h.runtime.db.uow() as uow:
        audit = await uow.audit.list_recent(limit=500)
        operations = await uow.operations.list_by_states(list(OperationState))
        kept: list[object] = [a.detail for a in audit]
        for op in operations:
            kept += [op.params, op.result]
            kept += [e.payload for e in await uow.events.list_for_operation(op.id)]
    return json.dumps(kept, default=str)


def _said_in_public(h: SlackHarness, secret: str) -> list[Any]:
    """Calls that post for more than one person and carry `secret`."""
    return [
        c
        for c in h.slack.calls
        if c.method in ("chat.postMessage", "chat.update") and secret in json.dumps(c.params)
    ]


# -- rebuild --------------------------------------------------------------------------------------


async def test_rebuild_is_confirmed_sent_once_and_followed_in_a_thread(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    web1 = _server(h, "web-1")
    await _say(h, said, "rebuild web-1 debian-12")
    modal = h.slack.calls_to("views.open")[-1].params["view"]
    assert "Debian 12 Bookworm, 1 SSH key kept" in _text_of(modal)
    assert len(_builds(h, web1.id)) == 1  # only a dialog so far

    started = await _confirm(h, said)
    assert f"OP-1: the rebuild of `web-1` (id {web1.id}) has started" in started
    again = await _confirm(h, said)  # a second submission of the same dialog
    assert "is being built on the panel right now" in again
    assert len(_builds(h, web1.id)) == 2  # the create's build and one rebuild
    assert _builds(h, web1.id)[-1] == {
        "operatingSystemId": 3,
        "name": "web-1",
        "hostname": "web-1",
        "sshKeys": [1],
    }
    await h.run_engine(ticks=10)

    operation = await h.runtime.core.servers.deletes.get(1)
    assert operation.state is OS.DONE
    root, thread = await _op_message(h, 1)
    assert "rebuild" in _text_of(root) and "Done" in _text_of(root)
    assert "installing the server: OS install of Debian 12 Bookworm" in thread
    assert "rebuilt with Debian 12 Bookworm" in thread
    assert _buttons(root) == []  # nobody had to approve it
    assert "password" not in started.lower()  # SSH keys: no password to show
    h.check_limits()


async def test_an_approved_rebuild_shows_the_password_only_to_whoever_asked(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="bare", ssh_key=None))
    await h.run_engine(ticks=10)
    bare = _server(h, "bare")
    policy = h.runtime.deps.policy
    h.runtime.deps.policy = replace(policy, approval=ApprovalRule.parse("always"))
    h.slack.reset()
    said = Replies(h)

    await _say(h, said, "rebuild bare")
    assert "waits for approval" in await _confirm(h, said)
    await h.runtime.deliver()
    root, _ = await _op_message(h, 1)
    assert set(_buttons(root)) == {ids.DELETE_APPROVE, ids.DELETE_REJECT}
    assert "the disk is erased" in _text_of(root)
    assert len(_builds(h, bare.id)) == 1  # nothing is sent before approval

    await h.click(ids.DELETE_APPROVE, 1, user=REQUESTER)  # the requester may not approve
    assert len(_builds(h, bare.id)) == 1
    await h.click(ids.DELETE_APPROVE, 1, user=APPROVER)
    await h.click(ids.DELETE_APPROVE, 1, user=ADMIN)  # too late: already decided
    assert len(_builds(h, bare.id)) == 2
    secret = h.sandbox.state.issued_secrets[-1]
    told = [c for c in h.slack.calls_to("chat.postEphemeral") if secret in json.dumps(c.params)]
    assert [(c.params["user"], c.params["channel"]) for c in told] == [(REQUESTER, CHANNEL)]
    assert not any(secret in json.dumps(r) for r in h.slack.responses)  # not the approver's
    await h.run_engine(ticks=10)
    _, thread = await _op_message(h, 1)
    assert "Approved by" in thread and "rebuilt with" in thread
    assert _said_in_public(h, secret) == []
    assert not any(secret in r.getMessage() for r in h.logs)
    assert secret not in await _everything_vfbot_kept(h)


async def test_a_rebuild_is_refused_while_a_build_runs_and_for_strangers(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    said = Replies(h)
    await h.submit(form(name="web"))
    await h.runtime.tick()  # created; the build is under way
    assert "VF-1 is still building it" in await _say(h, said, "rebuild web")
    await h.run_engine(ticks=10)
    assert "Only" in await _say(h, said, "rebuild web", user=STRANGER)
    assert h.slack.calls_to("views.open") == []
    async with h.runtime.db.uow() as uow:
        refusals = [a for a in await uow.audit.list_recent() if a.result == "refused"]
    assert refusals[0].action == "server.rebuild"


# -- resize, rename, password -------------------------------------------------------------------


async def test_resize_needs_approval_above_the_threshold_and_shows_at_once(
    slack_env: Any,
) -> None:
    h = await _with_servers(slack_env, VF_REQUIRE_APPROVAL="memory_gb>2")
    said = Replies(h)
    web1 = _server(h, "web-1")
    await _say(h, said, "resize web-1 memory=2048 cpu=2")
    reply = await _confirm(h, said)
    assert "memory 1,024 → 2,048 MB, CPU 1 → 2 cores" in reply
    assert "A restart applies it" in reply
    assert (web1.memory_mb, web1.cpu_cores) == (2048, 2)
    assert "2,048 MB" in await _say(h, said, "status web-1")

    await _say(h, said, "resize web-1 memory=4096")  # above memory_gb>2: an approver decides
    assert "waits for approval" in await _confirm(h, said)
    await h.runtime.deliver()
    await h.click(ids.DELETE_APPROVE, 2, user=APPROVER)
    assert web1.memory_mb == 4096
    assert (await h.runtime.core.servers.deletes.get(2)).state is OS.DONE

    assert "Say the new package or size" in await _say(h, said, "resize web-1 memory=hot")


async def test_a_refusal_by_the_panel_names_the_field(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    web1 = _server(h, "web-1")
    h.sandbox.state.hypervisors[web1.hypervisor_id].max_memory_mb = 3000
    await _say(h, said, "resize web-1 memory=8192")
    assert "does not have 8192 MB of memory free" in await _confirm(h, said)


async def test_rename_changes_vfbots_view_at_once(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    assert "renamed" in await _say(h, said, "rename web-1 db-1")
    assert _server(h, "db-1") is not None
    listed = await _say(h, said, "list")
    assert "db-1" in listed and "web-1" not in listed
    assert "db-1" in await _say(h, said, "status db-1")
    assert "lowercase" in await _say(h, said, "rename db-1 Bad_Name")


async def test_the_new_password_reaches_only_the_caller(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    await h.command("password web-1")
    secret = h.sandbox.state.issued_secrets[-1]
    private = [r for r in h.slack.responses if secret in json.dumps(r)]
    assert len(private) == 1 and private[0]["response_type"] == "ephemeral"
    assert _said_in_public(h, secret) == []
    assert not any(secret in r.getMessage() for r in h.logs)
    assert secret not in await _everything_vfbot_kept(h)
    assert h.sandbox.state.password_mails == []
    assert secret not in str(private[0].get("text"))  # the fallback text never carries it


# -- firewall, addresses, backups ------------------------------------------------------------------


async def test_firewall_show_on_and_confirmed_changes(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    web1 = _server(h, "web-1")
    assert "off" in await _say(h, said, "firewall web-1")
    await _say(h, said, "firewall web-1 on")
    assert web1.firewall_enabled
    await _say(h, said, "firewall web-1 rulesets 1,2")
    assert web1.firewall_rulesets == []  # a dialog first
    await _confirm(h, said)
    assert web1.firewall_rulesets == [1, 2]
    assert 'port="443"' in await _say(h, said, "firewall web-1")
    await _say(h, said, "firewall web-1 off")
    await _confirm(h, said)
    assert not web1.firewall_enabled
    await _say(h, said, "firewall web-1 rulesets 9")
    assert "Invalid or disabled firewall ruleset" in await _confirm(h, said)


async def test_removing_the_last_address_asks_twice(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    web1 = _server(h, "web-1")
    (first,) = [ip.address for ip in web1.ipv4]
    added_text = await _say(h, said, "ip web-1 add 1")
    (added,) = [ip.address for ip in web1.ipv4 if ip.address != first]
    assert added in added_text

    await _say(h, said, f"ip web-1 remove {added}")
    await _confirm(h, said)  # not the last one: asked once
    assert [ip.address for ip in web1.ipv4] == [first]

    await _say(h, said, f"ip web-1 remove {first}")
    opened = h.slack.calls_to("views.open")[-1].params["view"]
    answer = await h.submit(
        {}, user=REQUESTER, callback_id=ids.CONFIRM_VIEW, metadata=opened["private_metadata"]
    )
    assert answer["response_action"] == "update"  # the dialog asks once more
    assert "LAST IPv4 address" in _text_of(answer["view"])
    assert [ip.address for ip in web1.ipv4] == [first]
    said.new()
    await h.submit(
        {},
        user=REQUESTER,
        callback_id=ids.CONFIRM_VIEW,
        metadata=answer["view"]["private_metadata"],
    )
    assert web1.ipv4 == []
    assert "no IPv4 address" in said.new()

    assert "has no IPv4 address 192.0.2.250" in await _say(h, said, "ip web-1 remove 192.0.2.250")


async def test_backups_are_listed_with_what_the_api_cannot_do(slack_env: Any) -> None:
    h = await _with_servers(slack_env)
    said = Replies(h)
    h.sandbox.state.add_backup(_server(h, "web-1"))
    reply = await _say(h, said, "backups web-1")
    assert "complete" in reply and "cannot take or restore a backup" in reply
    assert "Only" in await _say(h, said, "backups web-1", user=STRANGER)
