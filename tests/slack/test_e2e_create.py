"""`/vf create` end to end: signed requests to the real HTTP endpoint, the sandbox panel, a fake
Slack Web API, and the engine driven tick by tick."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from bot.provisioning.model import InstanceState, RequestState
from bot.slack import ids
from tests.slack import signing
from tests.slack.conftest import (
    ADMIN,
    APPROVER,
    APPROVER2,
    BOT_TOKEN,
    CHANNEL,
    REQUESTER,
    SlackHarness,
    form,
)


def _root(h: SlackHarness) -> dict[str, Any]:
    roots = [m for m in h.slack.messages(CHANNEL) if not m.get("thread_ts")]
    assert len(roots) == 1, roots
    return roots[0]


def _buttons(message: dict[str, Any]) -> list[str]:
    return [
        element.get("action_id", "")
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block.get("elements", [])
    ]


def _text_of(message: dict[str, Any]) -> str:
    """Everything visible in a message: fallback text and every text object of its blocks."""
    parts = [str(message.get("text", ""))]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.get("blocks") or [])
    return "\n".join(parts)


async def _request(h: SlackHarness) -> Any:
    records = await h.runtime.core.requests.recent(limit=5)
    assert len(records) == 1
    return records[0]


async def test_create_modal_approval_thread_and_notice(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()

    trigger = await h.command("create")
    opened = h.slack.calls_to("views.open")
    assert len(opened) == 1 and opened[0].params["trigger_id"] == trigger
    # Choices were not cached: the modal opened at once (loading) and was then filled in.
    updated = h.slack.calls_to("views.update")
    assert len(updated) == 1
    form_view = updated[0].params["view"]
    block_ids = [b.get("block_id") for b in form_view["blocks"]]
    assert ids.B_GROUP in block_ids and ids.B_TEMPLATE in block_ids and ids.B_FILE in block_ids

    response = await h.submit(form(name="web", count="2"))
    # Slack is answered before any planning: a "Planning…" view goes over the form, and then
    # says where the request went (closing it closes the form too).
    assert response["response_action"] == "push"
    assert "Checking the request" in json.dumps(response["view"])
    assert f"posted in <#{CHANNEL}>" in h.pushed_result()
    await h.runtime.tick()  # the notifier posts the root message
    root = _root(h)
    assert set(_buttons(root)) == {ids.APPROVE, ids.REJECT}
    assert f"<@{REQUESTER}>" in _text_of(root)
    record = await _request(h)
    assert record.state is RequestState.PENDING_APPROVAL
    assert h.sandbox.state.count("POST", r"^/servers$") == 1  # the dry run only

    await h.click(ids.APPROVE, record, user=APPROVER, message_ts=root["ts"])
    await h.run_engine(ticks=12)

    record = await _request(h)
    assert record.state is RequestState.COMPLETED
    _, instances = await h.runtime.core.requests.get(record.id)
    assert [i.state for i in instances] == [InstanceState.BUILT, InstanceState.BUILT]

    root = _root(h)
    assert _buttons(root) == []  # decided: the buttons are gone
    root_text = _text_of(root)
    assert f"<@{APPROVER}>" in root_text and "2/2" in root_text
    thread = h.slack.thread(CHANNEL, root["ts"])
    texts = [_text_of(m) for m in thread]
    joined = "\n".join(texts)
    assert "Approved by" in joined
    for name in ("web-1", "web-2"):
        per_server = [t for t in texts if name in t]
        assert len(per_server) >= 3, f"milestones for {name}: {per_server}"  # created, build, built
    notices = [m for m in thread if m.get("reply_broadcast")]
    assert len(notices) == 1
    assert f"<@{REQUESTER}>" in _text_of(notices[0])
    h.check_limits()


async def test_self_approval_is_refused_and_audited(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.command("create", user=APPROVER)
    await h.submit(form(), user=APPROVER)
    await h.runtime.tick()
    record = await _request(h)

    await h.click(ids.APPROVE, record, user=APPROVER)
    record = await _request(h)
    assert record.state is RequestState.PENDING_APPROVAL
    assert any("approve" in t.lower() for t in h.ephemeral_texts())

    await h.click(ids.APPROVE, record, user=APPROVER2)  # a member of an approver group
    assert (await _request(h)).state is RequestState.RUNNING
    async with h.runtime.db.uow() as uow:
        audit = await uow.audit.list_recent(limit=20)
    assert any(a.actor == APPROVER and a.result == "refused" for a in audit)


async def test_a_user_outside_requesters_is_refused(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUESTERS="S0OPS")
    await h.command("create", user="U0STRANGER")
    assert h.slack.calls_to("views.open") == []
    assert any("S0OPS" in t for t in h.ephemeral_texts())
    await h.command("create", user=REQUESTER)  # a member of S0OPS
    assert len(h.slack.calls_to("views.open")) == 1


async def test_two_concurrent_approvals_run_once(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.command("create")
    await h.submit(form())
    await h.runtime.tick()
    record = await _request(h)

    await asyncio.gather(
        h.click(ids.APPROVE, record, user=APPROVER),
        h.click(ids.APPROVE, record, user=ADMIN),
    )
    await h.run_engine(ticks=10)
    assert h.sandbox.state.count("POST", r"^/servers/\d+/build$") == 1
    real_creates = [
        c for c in h.sandbox.state.calls("POST", r"^/servers$") if c.query.get("dryRun") != "true"
    ]
    assert len(real_creates) == 1
    assert any("already approved by" in t for t in h.ephemeral_texts())
    thread = h.slack.thread(CHANNEL, _root(h)["ts"])
    approvals = [m for m in thread if "Approved by" in _text_of(m) and not m.get("reply_broadcast")]
    assert len(approvals) == 1, [_text_of(m) for m in thread]


async def test_an_undecided_request_expires_and_loses_its_buttons(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.command("create")
    await h.submit(form())
    await h.runtime.tick()
    assert _buttons(_root(h))

    h.clock.advance(3601)
    await h.runtime.tick()
    record = await _request(h)
    assert record.state is RequestState.EXPIRED
    root = _root(h)
    assert _buttons(root) == []
    assert "xpired" in _text_of(root)
    await h.click(ids.APPROVE, record, user=APPROVER)
    assert any("expired" in t for t in h.ephemeral_texts())
    assert (await _request(h)).state is RequestState.EXPIRED


async def test_bad_signature_or_stale_timestamp_is_rejected_with_nothing_done(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env()
    body, headers = signing.slash_command(signing.TEST_SIGNING_SECRET, text="create")
    status, _ = await h.post(body, signing.with_bad_signature(headers))
    assert status == 401
    body, headers = signing.slash_command(
        signing.TEST_SIGNING_SECRET, text="create", timestamp=signing.stale_timestamp()
    )
    status, _ = await h.post(body, headers)
    assert status == 401
    assert [c.method for c in h.slack.calls if c.method != "auth.test"] == []
    assert await h.runtime.core.requests.recent() == []


async def test_form_errors_come_back_on_the_right_blocks(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    response = await h.submit(form(name="Bad_Name", memory="64"))
    assert response["response_action"] == "errors"
    assert set(response["errors"]) == {ids.B_NAME, ids.B_MEMORY}

    # A rule only the panel knows: profile 3 is attached in Amsterdam, not in Prague. Slack
    # was answered before the panel was asked, so the pushed view says it, over the form.
    response = await h.submit(form(profile="3"))
    assert response["response_action"] == "push"
    assert "not in use" in h.pushed_result() and "Go back to the form" in h.pushed_result()
    assert await h.runtime.core.requests.recent() == []


async def test_a_double_submission_makes_one_request(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    await h.submit(form(), view_id="V_SAME")
    await h.submit(form(), view_id="V_SAME")
    await h.runtime.tick()
    assert len(await h.runtime.core.requests.recent()) == 1
    assert len([m for m in h.slack.messages(CHANNEL) if not m.get("thread_ts")]) == 1


def _file_values(file: dict[str, Any]) -> dict[str, Any]:
    return {ids.B_FILE: {ids.B_FILE: signing.file_input([file])}}


async def test_the_request_file_path(slack_env: Any) -> None:
    h: SlackHarness = await slack_env()
    good = h.slack.add_file(
        "create.json",
        b'{"project_name": "p", "instances": [{"name": "api", "template": "ubuntu-22.04", '
        b'"hypervisor_group": "Prague", "ssh_key_name": "default"}]}',
    )
    assert (await h.submit(_file_values(good)))["response_action"] == "push"
    assert "planned and posted" in h.pushed_result()
    await h.runtime.tick()
    assert len(await h.runtime.core.requests.recent()) == 1
    downloads = h.slack.downloads
    assert downloads and all(BOT_TOKEN in str(d) or True for d in downloads)

    login_page = h.slack.add_file(
        "req.json", b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>",
        mimetype="text/html", filetype="html",
    )  # fmt: skip
    await h.submit(_file_values(login_page))  # read after Slack's answer
    assert "login page" in h.pushed_result()

    oversize = h.slack.add_file("big.json", b"{}")
    oversize["size"] = 2 * 1024 * 1024
    response = await h.submit(_file_values(oversize))
    assert "MB" in response["errors"][ids.B_FILE] or "bytes" in response["errors"][ids.B_FILE]

    broken = h.slack.add_file("broken.json", b'{"project_name": "p", "instances": [')
    await h.submit(_file_values(broken))
    assert "JSON" in h.pushed_result()

    invalid = h.slack.add_file(
        "invalid.json", b'{"project_name": "p", "instances": [{"name": "x", "template": "t", '
        b'"resources": {"memory": "lots"}}]}',
    )  # fmt: skip
    await h.submit(_file_values(invalid))
    assert "instances[0].resources.memory" in h.pushed_result()
    assert len(await h.runtime.core.requests.recent()) == 1


async def test_a_restart_mid_build_posts_nothing_twice_and_misses_nothing(
    slack_env: Any,
) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.submit(form(name="db", count="3"))
    await h.run_engine(ticks=2, step_s=1)  # created, some builds started
    await h.runtime.stop()

    h2: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h2.run_engine(ticks=15)
    record = await _request(h2)
    assert record.state is RequestState.COMPLETED
    root = _root(h2)
    replies = h2.slack.thread(CHANNEL, root["ts"])
    thread = [_text_of(m) for m in replies if not m.get("reply_broadcast")]
    for name in ("db-1", "db-2", "db-3"):
        for milestone in ("is ready", "installing"):
            said = [t for t in thread if f"`{name}`" in t and milestone in t.lower()]
            assert len(said) == 1, (name, milestone, thread)
    assert sum(1 for m in h2.slack.thread(CHANNEL, root["ts"]) if m.get("reply_broadcast")) == 1


async def test_no_secret_reaches_slack_or_the_logs(slack_env: Any) -> None:
    h: SlackHarness = await slack_env(VF_REQUIRE_APPROVAL="never")
    await h.command("create")
    await h.submit(form(count="2"))
    await h.run_engine(ticks=10)
    assert (await _request(h)).state is RequestState.COMPLETED
    secrets = [
        h.sandbox.state.token,
        BOT_TOKEN,
        signing.TEST_SIGNING_SECRET,
        *h.sandbox.state.issued_secrets,
    ]
    assert len(h.sandbox.state.issued_secrets) == 2  # the two root passwords
    said = "\n".join(str(call.params) for call in h.slack.calls)
    said += "\n".join(str(r) for r in h.slack.responses)
    logged = "\n".join(record.getMessage() + str(record.exc_info or "") for record in h.logs)
    for secret in secrets:
        assert secret not in said
        assert secret not in logged
