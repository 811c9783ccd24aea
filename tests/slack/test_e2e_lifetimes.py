"""Server lifetimes end to end: a request with `"expires_in": "30s"` is built, its requester is
reminded in the thread and by DM (Extend, Delete now, Keep), and at expiry the server is deleted
on the sandbox panel exactly once, with a milestone in the thread and a notice in the channel.
Signed Slack requests, the fake Slack Web API and the sandbox; one fake clock."""

from __future__ import annotations

import json
from typing import Any

from bot.provisioning.model import InstanceRecord, InstanceState
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import ADMIN, CHANNEL, REQUESTER, MakeHarness, SlackHarness

SETTINGS = {
    "VF_REQUIRE_APPROVAL": "never",
    "VF_EXPIRY_WARNING": "20s",
    "VF_MAX_LIFETIME": "7d",
    "VF_POLL_INTERVAL": "1s",
}


def _request(expires_in: str = "30s") -> str:
    return json.dumps(
        {
            "project_name": "life",
            "expires_in": expires_in,
            "instances": [{"name": "web", "hypervisor_group": "Prague", "template": "debian-12"}],
        }
    )


async def _built(bot: SlackHarness) -> InstanceRecord:
    await bot.command(f"create {_request()}")
    for _ in range(20):
        await bot.runtime.tick()
        bot.clock.advance(1)
        async with bot.runtime.db.uow() as uow:
            instances = await uow.instances.list_for_request(1)
        if instances and instances[0].state is InstanceState.BUILT:
            return instances[0]
    raise AssertionError("the server was not built")


async def _instance(bot: SlackHarness, instance_id: int) -> InstanceRecord:
    async with bot.runtime.db.uow() as uow:
        found = await uow.instances.get(instance_id)
    assert found is not None
    return found


async def _act(
    bot: SlackHarness,
    action_id: str,
    *,
    user: str,
    value: str,
    select: bool = False,
    on: dict[str, Any] | None = None,
) -> None:
    """Click a reminder's control: on the posted message `on` (its ts, channel and blocks come
    with the click, as from Slack), or on a message Slack no longer shows."""
    payload: dict[str, Any] = signing.block_actions(
        action_id=action_id,
        value=value,
        user_id=user,
        message_ts=str(on["ts"]) if on else "1700000000.000200",
        channel_id=str(on["channel"]) if on else CHANNEL,
        block_id=ids.EXPIRY_ACTIONS,
        response_url=bot.slack.response_url(),
        message_blocks=on.get("blocks") if on else None,
        thread_ts=on.get("thread_ts") if on else None,
    )
    if select:
        action = payload["actions"][0]
        del action["value"]
        action["type"] = "static_select"
        action["selected_option"] = {"text": {"type": "plain_text", "text": "x"}, "value": value}
    body, headers = signing.interaction(signing.TEST_SIGNING_SECRET, payload)
    status, _ = await bot.post(body, headers)
    assert status == 200


def _all_text(messages: list[dict[str, Any]]) -> str:
    return json.dumps(messages)


async def test_built_warned_and_deleted_exactly_once(slack_env: MakeHarness) -> None:
    bot: SlackHarness = await slack_env(**SETTINGS)
    instance = await _built(bot)
    server_id = instance.server_id
    root = bot.slack.messages(CHANNEL)[0]
    assert "expires" in _all_text([root])  # the request message shows the expiry
    await bot.command(f"status {server_id}")
    assert any("Expires" in json.dumps(r) for r in bot.slack.responses)

    bot.clock.advance(12)  # within VF_EXPIRY_WARNING of the expiry
    for _ in range(3):
        await bot.runtime.tick()
    thread = bot.slack.thread(CHANNEL, root["ts"])
    reminders = [m for m in thread if ids.EXPIRY_EXTEND in json.dumps(m.get("blocks"))]
    assert len(reminders) == 1
    dm = bot.slack.messages(bot.slack.dm_channel(REQUESTER))
    assert len([m for m in dm if ids.EXPIRY_EXTEND in json.dumps(m.get("blocks"))]) == 1
    bot.check_limits()

    bot.clock.advance(20)  # past the expiry
    for _ in range(4):
        await bot.runtime.tick()
        bot.clock.advance(1)
    assert bot.sandbox.state.count("DELETE", rf"^/servers/{server_id}$") == 1
    assert server_id not in bot.sandbox.state.servers
    assert (await _instance(bot, instance.id)).state is InstanceState.DELETED
    thread_text = _all_text(bot.slack.thread(CHANNEL, root["ts"]))
    assert "lifetime ended" in thread_text
    notices = [
        m
        for m in bot.slack.messages(CHANNEL)
        if not m.get("thread_ts") and "was deleted" in str(m.get("text"))
    ]
    assert len(notices) == 1 and f"<@{REQUESTER}>" in notices[0]["text"]
    reminders = [
        m
        for m in bot.slack.thread(CHANNEL, root["ts"])
        if ids.EXPIRY_EXTEND in json.dumps(m.get("blocks"))
    ]
    assert len(reminders) == 1  # still one


async def test_extend_keep_and_delete_now_buttons(slack_env: MakeHarness) -> None:
    bot: SlackHarness = await slack_env(**SETTINGS)
    instance = await _built(bot)
    first = instance.expires_at
    assert first is not None

    await _act(bot, ids.EXPIRY_EXTEND, user="U0STRANGER", value=f"{instance.id}:3600", select=True)
    assert "who requested it" in bot.ephemeral_texts()[-1]
    assert (await _instance(bot, instance.id)).expires_at == first
    await _act(bot, ids.EXPIRY_EXTEND, user=REQUESTER, value=f"{instance.id}:3600", select=True)
    extended = await _instance(bot, instance.id)
    assert extended.expires_at is not None and (extended.expires_at - first).total_seconds() == 3600
    assert "now expires" in bot.ephemeral_texts()[-1]

    await _act(
        bot, ids.EXPIRY_EXTEND, user=REQUESTER, value=f"{instance.id}:{8 * 86400}", select=True
    )
    assert "VF_MAX_LIFETIME" in bot.ephemeral_texts()[-1]

    await bot.command("extend web 2h")
    assert "now expires" in bot.ephemeral_texts()[-1]

    await _act(bot, ids.EXPIRY_KEEP, user=REQUESTER, value=str(instance.id))
    assert "Only an admin" in bot.ephemeral_texts()[-1]
    assert (await _instance(bot, instance.id)).expires_at is not None
    await _act(bot, ids.EXPIRY_KEEP, user=ADMIN, value=str(instance.id))
    assert (await _instance(bot, instance.id)).expires_at is None

    await bot.command("extend web 2h")  # kept: it never expires now
    assert "never expires" in bot.ephemeral_texts()[-1]
    await bot.command("expiring")
    assert "Nothing expires" in json.dumps(bot.slack.responses[-1])
    await bot.command("expiring all")
    assert "Only approvers and admins" in bot.ephemeral_texts()[-1]

    await _act(bot, ids.EXPIRY_DELETE, user=REQUESTER, value=str(instance.id))
    server_id = instance.server_id
    assert bot.sandbox.state.count("DELETE", rf"^/servers/{server_id}$") == 1
    assert server_id not in bot.sandbox.state.servers
    bot.check_limits()


async def test_a_lifetime_over_the_maximum_is_refused_naming_the_field(
    slack_env: MakeHarness,
) -> None:
    bot: SlackHarness = await slack_env(**SETTINGS)
    await bot.command(f"create {_request('30d')}")
    said = bot.ephemeral_texts()[-1]
    assert "expires_in" in said and "VF_MAX_LIFETIME" in said and "nothing was created" in said
    await bot.command(f"create {_request('30d')}", user=ADMIN)  # admins may exceed it
    assert "is posted" in bot.ephemeral_texts()[-1]


async def test_a_settled_reminder_shows_what_was_done_instead_of_its_controls(
    slack_env: MakeHarness,
) -> None:
    bot: SlackHarness = await slack_env(**SETTINGS)
    instance = await _built(bot)
    root = bot.slack.messages(CHANNEL)[0]
    bot.clock.advance(12)  # within VF_EXPIRY_WARNING of the expiry
    for _ in range(3):
        await bot.runtime.tick()
    dm_channel = bot.slack.dm_channel(REQUESTER)
    (in_thread,) = [
        m
        for m in bot.slack.thread(CHANNEL, root["ts"])
        if ids.EXPIRY_EXTEND in json.dumps(m.get("blocks"))
    ]
    (in_dm,) = [
        m
        for m in bot.slack.messages(dm_channel)
        if ids.EXPIRY_EXTEND in json.dumps(m.get("blocks"))
    ]
    reminder_text = in_dm["blocks"][0]["text"]["text"]

    value = f"{instance.id}:3600"
    await _act(bot, ids.EXPIRY_EXTEND, user="U0STRANGER", value=value, select=True, on=in_dm)
    assert ids.EXPIRY_EXTEND in json.dumps(in_dm["blocks"])  # a refusal changes nothing
    await _act(bot, ids.EXPIRY_EXTEND, user=REQUESTER, value=value, select=True, on=in_dm)
    assert ids.EXPIRY_EXTEND not in json.dumps(in_dm["blocks"])  # `chat.update`d in place
    assert in_dm["blocks"][0]["text"]["text"] == reminder_text
    assert f"Extended by <@{REQUESTER}>" in json.dumps(in_dm["blocks"])
    assert ids.EXPIRY_EXTEND in json.dumps(in_thread["blocks"])  # the other copy keeps them

    await _act(bot, ids.EXPIRY_KEEP, user=ADMIN, value=str(instance.id), on=in_thread)
    assert ids.EXPIRY_KEEP not in json.dumps(in_thread["blocks"])
    assert f"Kept by <@{ADMIN}>" in json.dumps(in_thread["blocks"])
    assert (await _instance(bot, instance.id)).expires_at is None
    bot.check_limits()
