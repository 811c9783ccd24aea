"""Server lifetimes in the domain: `expires_in` becomes each server's `expires_at` when it is
built; the engine's tick writes one reminder, then takes the action once (a delete through
`DeleteService.run`), also with two replicas racing on SQLite and PostgreSQL. The sandbox panel
and one fake clock; nothing sleeps."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.provisioning import events
from bot.provisioning.errors import InvalidValueError, PlanError
from bot.provisioning.lifetimes import ExpiryAction, LifetimePolicy
from bot.provisioning.model import InstanceRecord, InstanceState, RequestState
from tests.provisioning.conftest import Harness, MakeHarness

S = InstanceState


def _request(expires_in: str | None = "30s", **instance: object) -> dict[str, object]:
    body: dict[str, object] = {
        "project_name": "life",
        "instances": [
            {"name": "web", "hypervisor_group": "Prague", "template": "debian-12", **instance}
        ],
    }
    if expires_in is not None:
        body["expires_in"] = expires_in
    return body


POLICY = LifetimePolicy(warning_s=20, max_s=7 * 86400)


async def _built(harness: Harness, body: dict[str, object]) -> InstanceRecord:
    record = await harness.submit_json(body)
    assert (await harness.run_until_done(record.id)).state is RequestState.COMPLETED
    _, instances = await harness.requests.get(record.id)
    return instances[0]


async def _kinds(harness: Harness, request_id: int, kind: str) -> list[events.Event]:
    found = [events.parse_event(e) for e in await harness.events(request_id) if e.kind == kind]
    return [e for e in found if e is not None]


def _deletes(harness: Harness, server_id: int | None) -> int:
    return harness.panel.count("DELETE", rf"^/servers/{server_id}$")


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_warned_once_then_deleted_once(make_harness: MakeHarness) -> None:
    harness = make_harness(lifetimes=POLICY)
    instance = await _built(harness, _request("30s"))
    assert instance.expires_at is not None and instance.finished_at is not None
    assert instance.expires_at == instance.finished_at.replace(microsecond=0) + timedelta(
        seconds=30
    )
    assert instance.plan.lifetime_s == 30
    await harness.engine.run_once()  # 30 s left, warned 20 s before: nothing yet
    assert await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRY_WARNING) == []

    harness.clock.advance(11)
    for _ in range(3):
        await harness.engine.run_once()
    (warning,) = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRY_WARNING)
    assert isinstance(warning, events.InstanceExpiryWarning)
    assert warning.expires_at == instance.expires_at
    assert (warning.requester, warning.action) == ("U_REQUESTER", "delete")
    assert harness.panel.servers[instance.server_id or 0] is not None

    harness.clock.advance(20)
    report = await harness.engine.run_once()
    assert report.expired == 1
    for _ in range(2):
        await harness.engine.run_once()
    assert _deletes(harness, instance.server_id) == 1
    assert instance.server_id not in harness.panel.servers
    (expired,) = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRED)
    assert isinstance(expired, events.InstanceExpired)
    assert (expired.action, expired.outcome) == ("delete", "done")
    (deleted,) = await _kinds(harness, instance.request_id, events.INSTANCE_DELETED)
    assert isinstance(deleted, events.InstanceDeleted) and deleted.by == "vfbot"
    async with harness.uow() as uow:
        after = await uow.instances.get(instance.id)
        audit = await uow.audit.list_recent(20)
    assert after is not None and after.state is S.DELETED
    actions = [(a.actor, a.action, a.result) for a in audit]
    assert ("vfbot", "server.expire.delete", "ok") in actions
    assert ("vfbot", "server.delete", "ok") in actions  # the delete path's own entry


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_a_server_given_away_is_never_touched(make_harness: MakeHarness) -> None:
    harness = make_harness(lifetimes=POLICY)
    instance = await _built(harness, _request("30s"))
    harness.panel.servers[instance.server_id or 0].owner_id = 2  # `/vf owner` since
    harness.clock.advance(31)
    await harness.engine.run_once()
    await harness.engine.run_once()
    assert _deletes(harness, instance.server_id) == 0
    (expired,) = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRED)
    assert isinstance(expired, events.InstanceExpired) and expired.outcome == "untouched"
    assert "user 2" in expired.result and "did not touch" in expired.result


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_a_server_already_gone_counts_as_done(make_harness: MakeHarness) -> None:
    harness = make_harness(lifetimes=POLICY)
    instance = await _built(harness, _request("30s"))
    del harness.panel.servers[instance.server_id or 0]  # deleted in the panel meanwhile
    harness.clock.advance(31)
    await harness.engine.run_once()
    (expired,) = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRED)
    assert isinstance(expired, events.InstanceExpired) and expired.outcome == "gone"
    async with harness.uow() as uow:
        after = await uow.instances.get(instance.id)
    assert after is not None and after.state is S.DELETED


@pytest.mark.parametrize("store", ["memory"], indirect=True)
@pytest.mark.parametrize("action", [ExpiryAction.SUSPEND, ExpiryAction.NOTIFY])
async def test_suspend_and_notify(make_harness: MakeHarness, action: ExpiryAction) -> None:
    harness = make_harness(lifetimes=LifetimePolicy(warning_s=20, action=action))
    instance = await _built(harness, _request("30s"))
    harness.clock.advance(31)
    for _ in range(3):
        await harness.engine.run_once()
    server = harness.panel.servers[instance.server_id or 0]
    assert server.suspended is (action is ExpiryAction.SUSPEND)
    assert harness.panel.count("POST", r"/suspend$") == (action is ExpiryAction.SUSPEND)
    (expired,) = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRED)
    assert isinstance(expired, events.InstanceExpired)
    assert (expired.action, expired.outcome) == (action.value, "done")


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_extend_keep_and_the_maximum(make_harness: MakeHarness) -> None:
    harness = make_harness(lifetimes=LifetimePolicy(warning_s=20, max_s=3600))
    instance = await _built(harness, _request("30s"))
    expiry = harness.servers.expiry
    first = instance.expires_at
    assert first is not None
    harness.clock.advance(15)
    await harness.engine.run_once()  # warned for the first expiry
    extended = await expiry.extend(instance, 600, actor="U_REQUESTER", admin=False)
    assert extended.expires_at == first + timedelta(seconds=600)
    with pytest.raises(InvalidValueError, match="VF_MAX_LIFETIME"):
        await expiry.extend(extended, 3600, actor="U_REQUESTER", admin=False)
    longer = await expiry.extend(extended, 3600, actor="U_ADMIN", admin=True)
    assert longer.expires_at == first + timedelta(seconds=4200)
    # The new expiry gets its own reminder.
    harness.clock.advance(4200)  # 15 s before the new expiry
    await harness.engine.run_once()
    warnings = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRY_WARNING)
    assert len(warnings) == 2
    kept = await expiry.keep(longer, actor="U_ADMIN")
    assert kept.expires_at is None
    with pytest.raises(InvalidValueError, match="never expires"):
        await expiry.extend(kept, 3600, actor="U_ADMIN", admin=True)
    harness.clock.advance(3600)
    await harness.engine.run_once()
    assert instance.server_id in harness.panel.servers
    changes = await _kinds(harness, instance.request_id, events.INSTANCE_EXPIRY_CHANGED)
    assert [getattr(c, "by", "") for c in changes] == ["U_REQUESTER", "U_ADMIN", "U_ADMIN"]
    listed = await expiry.expiring(within_s=86400)
    assert listed == []


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_lifetimes_in_the_plan_and_the_maximum(make_harness: MakeHarness) -> None:
    harness = make_harness(lifetimes=LifetimePolicy(default_s=3600, max_s=86400))
    intake = harness.intake
    request = intake.parse(
        {
            "project_name": "life",
            "expires_in": "4h",
            "instances": [
                {"name": "a", "hypervisor_group": "Prague", "template": "debian-12"},
                {
                    "name": "b",
                    "number_of_instances": 2,
                    "hypervisor_group": "Prague",
                    "template": "debian-12",
                    "expires_in": "2d",
                },
            ],
        }
    )
    with pytest.raises(PlanError) as refused:
        await intake.plan(request)
    assert [p.path for p in refused.value.problems] == ["instances[1].expires_in"]
    assert "VF_MAX_LIFETIME" in refused.value.problems[0].message
    plan = await intake.plan(request, admin=True)
    assert [s.lifetime_s for s in plan.servers] == [4 * 3600, 2 * 86400, 2 * 86400]
    default = await intake.plan(intake.parse(_request(None)))
    assert [s.lifetime_s for s in default.servers] == [3600]


@pytest.mark.parametrize("store", ["sqlite", "postgresql"], indirect=True)
async def test_two_replicas_remind_once_and_delete_once(make_harness: MakeHarness) -> None:
    first = make_harness(lifetimes=POLICY, worker_id="replica-1")
    second = make_harness(lifetimes=POLICY, worker_id="replica-2")
    instance = await _built(first, _request("30s"))
    first.clock.advance(11)
    for _ in range(2):
        await asyncio.gather(first.engine.run_once(), second.engine.run_once())
    first.clock.advance(20)
    for _ in range(3):
        await asyncio.gather(first.engine.run_once(), second.engine.run_once())
    assert _deletes(first, instance.server_id) == 1
    assert len(await _kinds(first, instance.request_id, events.INSTANCE_EXPIRY_WARNING)) == 1
    assert len(await _kinds(first, instance.request_id, events.INSTANCE_EXPIRED)) == 1
    assert len(await _kinds(first, instance.request_id, events.INSTANCE_DELETED)) == 1


@pytest.mark.parametrize("store", ["memory"], indirect=True)
async def test_the_daily_report_hears_what_expires_within_a_day(
    make_harness: MakeHarness,
) -> None:
    harness = make_harness(lifetimes=POLICY)
    soon = await _built(harness, _request("4h"))
    await _built(harness, {**_request("3d"), "project_name": "later"})
    now = harness.clock()
    found = await harness.servers.expiry.expiring_between(now, now + timedelta(days=1))
    assert [(s.name, s.server_id, s.request_human_id, s.requester) for s in found] == [
        ("web", soon.server_id, soon.human_request_id, "U_REQUESTER")
    ]
    assert found[0].expires_at == soon.expires_at
    assert await harness.servers.expiry.expiring_between(now + timedelta(hours=5), now) == []
