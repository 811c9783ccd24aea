"""The builders of issue 13 (rebuild, resize, password, firewall, addresses, backups, and the
rebuild/resize operation messages) in every state: within Block Kit limits, user and panel text
escaped, and a password only where it may be: in the blocks for the person who asked."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from slack_sdk.models.blocks import Block

from bot.provisioning import events as ev
from bot.provisioning.model import Operation, OperationKind, OperationState
from bot.provisioning.servers.model import (
    AddressChange,
    BackupList,
    FirewallView,
    PasswordResult,
    PowerResult,
    RebuildRun,
)
from bot.slack import ids
from bot.slack.blocks.day2 import (
    address_text,
    backups_blocks,
    firewall_blocks,
    operation_reply_text,
    password_blocks,
    password_text,
    rebuild_password_blocks,
    rebuild_text,
    second_ask_text,
)
from bot.slack.blocks.operation import (
    operation_blocks,
    operation_milestone_text,
    operation_text,
)
from bot.virtfusion import Backup
from tests.slack.blockkit import check_blocks
from tests.slack.test_blocks_ops import (
    DECIDED,
    EVIL,
    NOW,
    PASSWORD,
    actions,
    assert_message,
    assert_text,
    operation,
    rendered,
)

OS = OperationState
REBUILD = {
    "template_id": 3,
    "template": "Debian 12 <!here>",
    "ssh_key_ids": [1, 2],
    "answer": "queued",
}
RESIZE = {"memory_mb": 4096, "cpu_cores": None, "summary": "memory 1,024 → 4,096 MB"}


def rebuild(state: OperationState = OS.PENDING_APPROVAL, **changes: object) -> Operation:
    return dataclasses.replace(
        operation(state, kind=OperationKind.REBUILD, params=dict(REBUILD)),
        **changes,  # type: ignore[arg-type]  # test-only overrides
    )


def resize(state: OperationState = OS.PENDING_APPROVAL, **changes: object) -> Operation:
    return dataclasses.replace(
        operation(state, kind=OperationKind.RESIZE, params=dict(RESIZE)),
        **changes,  # type: ignore[arg-type]  # test-only overrides
    )


OPERATIONS = {
    "rebuild-pending": rebuild(),
    "rebuild-building": rebuild(OS.BUILDING, **DECIDED),
    "rebuild-done": rebuild(OS.DONE, result="server 123 (web-1): rebuilt in 4 min.", **DECIDED),
    "rebuild-failed": rebuild(OS.FAILED, result="<!channel> broke", **DECIDED),
    "rebuild-evil": rebuild(server_name=EVIL, params={"template": EVIL, "ssh_key_ids": "x"}),
    "resize-pending": resize(),
    "resize-done": resize(OS.DONE, result="resized. A restart applies it.", **DECIDED),
}


@pytest.mark.parametrize("case", sorted(OPERATIONS))
def test_rebuild_and_resize_messages_are_valid(case: str) -> None:
    op = OPERATIONS[case]
    blocks = operation_blocks(op, now=NOW)
    assert_message(blocks, operation_text(op))
    expected = [ids.DELETE_APPROVE, ids.DELETE_REJECT] if op.state is OS.PENDING_APPROVAL else []
    assert actions(blocks) == expected


def test_the_operation_message_says_what_changes() -> None:
    text = rendered(operation_blocks(OPERATIONS["rebuild-pending"], now=NOW))
    assert "asks to rebuild `web-1` (id 123), a server of VF-12" in text
    assert "reinstall Debian 12 &lt;!here&gt;, 2 SSH keys kept; the disk is erased" in text
    assert "When" not in text  # only deletes wait a delay
    confirm = operation_blocks(OPERATIONS["rebuild-pending"], now=NOW)[-1]["elements"][0][  # type: ignore[index]
        "confirm"
    ]
    assert "disk erased" in confirm["text"]["text"]
    assert "*Installing*" in rendered(operation_blocks(OPERATIONS["rebuild-building"], now=NOW))
    resized = rendered(operation_blocks(OPERATIONS["resize-pending"], now=NOW))
    assert "asks to resize" in resized and "memory 1,024 → 4,096 MB" in resized


def test_a_rebuild_thread_gets_a_line_per_milestone() -> None:
    op = OPERATIONS["rebuild-building"]
    lines = [
        operation_milestone_text(op, ev.OperationDecided(state="approved", by="U0APPROVER")),
        operation_milestone_text(op, ev.OperationDecided(state="rejected", by="U0APPROVER")),
        operation_milestone_text(op, ev.OperationDecided(state="expired")),
        operation_milestone_text(op, ev.OperationStarted(detail="OS install of <!here>")),
        operation_milestone_text(op, ev.OperationFinished(state="done", result="rebuilt")),
        operation_milestone_text(op, ev.OperationFinished(state="failed", result="<!channel>")),
    ]
    for line in lines:
        assert line is not None
        assert_text(line)
    assert "Approved by <@U0APPROVER>" in lines[0]
    assert "OS install of &lt;!here&gt;" in lines[3]
    assert lines[5] == ":x: &lt;!channel&gt;"
    assert operation_milestone_text(op, ev.OperationRequested(by="U0REQUESTER")) is None
    deletion = operation()
    assert operation_milestone_text(deletion, ev.OperationStarted(detail="x")) is None


def _run(state: OperationState = OS.BUILDING, **changes: object) -> RebuildRun:
    return RebuildRun(rebuild(state, channel="C0OPS", **DECIDED), **changes)  # type: ignore[arg-type]


def test_rebuild_replies_and_the_password_block() -> None:
    started = rebuild_text(_run(ssh_keys=2))
    assert "OP-5: the rebuild of `web-1` (id 123) has started" in started
    assert "thread" in started
    assert "answer was lost" in rebuild_text(_run(unclear=True))
    failed = rebuild_text(RebuildRun(rebuild(OS.FAILED, result=None)))
    assert failed.startswith(":x: OP-5")
    for text in (started, failed):
        assert_text(text)
    blocks = rebuild_password_blocks(_run(), SecretStr(PASSWORD))
    _assert_secret_blocks(blocks)
    assert "Only you can see this" in rendered(blocks)


def _assert_secret_blocks(blocks: list[dict[str, object]]) -> None:
    """Valid blocks with the password once, as typed, in the preformatted block only."""
    check_blocks(blocks)
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None and parsed.to_dict() == block
    secret: Any = blocks[1]
    assert secret["elements"][0]["elements"][0]["text"] == PASSWORD  # no escaping, no loss
    assert rendered(blocks).count(PASSWORD) == 1
    assert_message([blocks[0], blocks[2]])


def _password(task: PowerResult) -> PasswordResult:
    return PasswordResult(123, EVIL, "root", SecretStr(PASSWORD), task)


@pytest.mark.parametrize(
    ("finished", "failed", "expected"),
    [
        (True, False, "is set"),
        (False, False, "is being set"),
        (True, True, "failed on the panel"),
    ],
)
def test_password_reply(finished: bool, failed: bool, expected: str) -> None:
    task = PowerResult(123, EVIL, "password", 77, finished, failed, "<!here>" if failed else "")
    result = _password(task)
    text = password_text(result)
    blocks = password_blocks(result)
    assert_text(text)
    assert expected in text
    assert PASSWORD not in text  # never in the fallback text (notifications show it)
    if failed:
        assert_message(blocks, text)
        assert PASSWORD not in rendered(blocks)
    else:
        _assert_secret_blocks(blocks)
    if not finished:
        assert "task 77" in rendered(blocks)


def test_firewall_blocks_bound_the_rules() -> None:
    many = FirewallView(123, EVIL, True, tuple(f"port={i} note={EVIL}" for i in range(40)))
    blocks = firewall_blocks(many)
    assert_message(blocks)
    text = rendered(blocks)
    assert "*on*" in text and "Rules* (40)" in text and "and 20 more" in text
    off = rendered(firewall_blocks(FirewallView(123, "web-1", False)))
    assert "*off*" in off and "No rules." in off and "firewall web-1 rulesets 2,3" in off


def test_address_and_second_ask_texts() -> None:
    added = address_text(AddressChange(123, EVIL, added=("192.0.2.5",), addresses=("a", "b")))
    removed = address_text(AddressChange(123, "web-1", removed=("192.0.2.5",)))
    nothing = address_text(AddressChange(123, "web-1", addresses=("192.0.2.1",)))
    for text in (added, removed, nothing):
        assert_text(text)
    assert "Added 192.0.2.5" in added and "it has a, b" in added
    assert "it has no IPv4 address" in removed
    assert "added no address" in nothing
    assert "LAST IPv4 address of server web-1" in second_ask_text("192.0.2.5", "web-1")


def test_backups_blocks_bound_the_list_and_say_what_the_api_cannot_do() -> None:
    rows = tuple(
        Backup(
            id=i,
            storage=EVIL,
            complete=i % 3 != 0,
            progress=i % 3 == 0,
            deleting=i == 4,
            created=NOW - timedelta(days=i),
        )
        for i in range(1, 31)
    )
    blocks = backups_blocks(BackupList(123, EVIL, EVIL, rows))
    assert_message(blocks)
    text = rendered(blocks)
    assert "and 10 older ones" in text and "being deleted" in text and "in progress" in text
    assert "cannot take or restore a backup" in text
    empty = rendered(backups_blocks(BackupList(123, "web-1", "")))
    assert "no backup plan" in empty and "_none yet_" in empty


def test_operation_replies() -> None:
    pending = operation_reply_text(OPERATIONS["resize-pending"])
    done = operation_reply_text(OPERATIONS["resize-done"])
    failed = operation_reply_text(OPERATIONS["rebuild-failed"])
    for text in (pending, done, failed):
        assert_text(text)
    assert "waits for approval" in pending
    assert done.startswith(":white_check_mark: OP-5: resized")
    assert failed == ":x: OP-5: &lt;!channel&gt; broke"
    assert json.dumps([pending, done, failed])
