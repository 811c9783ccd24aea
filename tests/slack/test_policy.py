import dataclasses

import pytest

from bot.config import Settings, load_settings
from bot.slack import policy as policy_module
from bot.slack.policy import (
    AccessPolicy,
    ApprovalRule,
    Decision,
    mention,
    normalize_id,
)

ALICE = "U0ALICE01"  # requester
BOB = "U0BOB0002"  # approver
CAROL = "W0CAROL03"  # admin (Enterprise Grid id)
DAVE = "U0DAVE004"  # member of the approver group
EVE = "U0EVE0005"  # nobody special
OPS = "S0OPS0001"  # approver group
DEVS = "S0DEVS002"  # requester group
GENERAL = "C0GENERAL"
INFRA = "C0INFRA01"
DM = "D0DIRECT1"


def test_all_names_are_exported() -> None:
    public = {
        name
        for name, value in vars(policy_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == policy_module.__name__
    }
    assert public <= set(policy_module.__all__)


# -- ApprovalRule ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("always", ApprovalRule(always=True)),
        (" ALWAYS ", ApprovalRule(always=True)),
        ("never", ApprovalRule(always=False)),
        ("servers>3", ApprovalRule(always=False, max_servers=3)),
        ("Memory_GB > 16", ApprovalRule(always=False, max_memory_gb=16)),
        ("disk_gb>500", ApprovalRule(always=False, max_disk_gb=500)),
        (
            "servers > 3, memory_gb>64 ,disk_gb>500",
            ApprovalRule(always=False, max_servers=3, max_memory_gb=64, max_disk_gb=500),
        ),
        ("servers>0", ApprovalRule(always=False, max_servers=0)),
    ],
)
def test_rule_parses(text: str, rule: ApprovalRule) -> None:
    assert ApprovalRule.parse(text) == rule


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "is empty"),
        ("sometimes", 'has "sometimes", which is not a rule'),
        ("servers>3,", "has an empty item"),
        ("servers>=3", 'has "servers>=3"'),
        ("servers<3", 'has "servers<3"'),
        ("cpu>4", 'has "cpu>4"'),
        ("memory_gb>1.5", 'has "memory_gb>1.5"'),
        ("servers>-1", 'has "servers>-1"'),
        ("servers>3, servers>5", "gives servers twice"),
        ("<!channel>", 'has "<?channel>"'),
    ],
)
def test_bad_rule_shows_examples(text: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        ApprovalRule.parse(text)
    assert words in str(caught.value)
    assert '"servers>3, memory_gb>64, disk_gb>500"' in str(caught.value)


def test_always_and_never() -> None:
    always, never = ApprovalRule.parse("always"), ApprovalRule.parse("never")
    assert always.required(servers=1, memory_mb=256, disk_gb=5)
    assert not never.required(servers=500, memory_mb=10**7, disk_gb=10**6)
    assert never.never and not always.never
    assert always.describe() == "every request"
    assert never.describe() == "no request"


@pytest.mark.parametrize(
    ("servers", "memory_mb", "disk_gb", "required"),
    [
        (3, 16 * 1024, 500, False),  # at every threshold: not more than
        (4, 1024, 10, True),
        (1, 16 * 1024 + 1, 10, True),
        (1, 1024, 501, True),
        (0, 0, 0, False),
    ],
)
def test_thresholds_are_exclusive_and_any_one_triggers(
    servers: int, memory_mb: int, disk_gb: int, required: bool
) -> None:
    rule = ApprovalRule.parse("servers>3, memory_gb>16, disk_gb>500")
    assert rule.required(servers=servers, memory_mb=memory_mb, disk_gb=disk_gb) is required


def test_describe() -> None:
    assert (
        ApprovalRule.parse("servers>3,memory_gb>16").describe()
        == "more than 3 servers or more than 16 GB memory"
    )
    assert ApprovalRule.parse("servers>1").describe() == "more than 1 server"
    assert ApprovalRule.parse("disk_gb>100").describe() == "more than 100 GB disk"


def test_settings_default_rule_parses() -> None:
    assert ApprovalRule.parse(load_settings_for_slack().vf_require_approval).always


# -- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" U0ALICE01 ", ALICE),
        ("<@U0ALICE01>", ALICE),
        ("<@U0ALICE01|alice>", ALICE),
        ("<!subteam^S0OPS0001|@ops>", OPS),
        ("<#C0GENERAL|general>", GENERAL),
        ("@alice", "@alice"),
    ],
)
def test_normalize_id(value: str, expected: str) -> None:
    assert normalize_id(value) == expected


def test_mention_renders_only_valid_ids() -> None:
    assert mention(ALICE) == "<@U0ALICE01>"
    assert mention(CAROL) == "<@W0CAROL03>"
    assert mention(OPS) == "<!subteam^S0OPS0001>"
    assert mention(GENERAL) == "<#C0GENERAL>"
    for bad in ("!channel", "<!here>", "alice", "u0alice01", "U0ALICE01>", ""):
        with pytest.raises(ValueError):
            mention(bad)


# -- AccessPolicy ------------------------------------------------------------------------------

POLICY = AccessPolicy(
    requesters=(ALICE, DEVS),
    approvers=(BOB,),
    approver_groups=(OPS,),
    admins=(CAROL,),
    allowed_channels=(GENERAL, INFRA),
)


def test_entries_are_normalized() -> None:
    policy = AccessPolicy(approvers=("<@U0BOB0002|bob>", " U0BOB0002", ""), admins=(CAROL,))
    assert policy.approvers == (BOB,)


def test_channel_allowed() -> None:
    assert POLICY.channel_allowed(GENERAL) == Decision(True)
    assert POLICY.channel_allowed("C0RANDOM1") == Decision(
        False, "vfbot does not take requests in this channel; use <#C0GENERAL> or <#C0INFRA01>."
    )
    assert POLICY.channel_allowed(DM) == Decision(
        False,
        "vfbot does not take requests in direct messages; use <#C0GENERAL> or <#C0INFRA01>.",
    )
    assert AccessPolicy().channel_allowed(DM).allowed
    assert AccessPolicy().channel_allowed("C0RANDOM1").allowed


def test_channel_refusal_renders_only_valid_ids() -> None:
    policy = AccessPolicy(allowed_channels=("<!channel>", "general"))
    decision = policy.channel_allowed(GENERAL)
    assert not decision.allowed
    assert decision.reason == "vfbot is not enabled in any channel yet; ask an admin."


@pytest.mark.parametrize(
    ("user", "groups", "channel", "allowed"),
    [
        (ALICE, set(), GENERAL, True),  # listed user
        (EVE, {DEVS}, INFRA, True),  # member of a listed group
        (EVE, {OPS}, GENERAL, False),  # not listed
        (ALICE, set(), "C0RANDOM1", False),  # listed, wrong channel
        (ALICE, set(), DM, False),
        (CAROL, set(), DM, True),  # admins always
        (CAROL, set(), "C0RANDOM1", True),
    ],
)
def test_can_request(user: str, groups: set[str], channel: str, allowed: bool) -> None:
    assert POLICY.can_request(user, groups, channel).allowed is allowed


def test_request_refusals_say_why() -> None:
    assert POLICY.can_request(EVE, set(), GENERAL) == Decision(
        False,
        "You are not allowed to request servers. Requests are open to <@U0ALICE01> or "
        "<!subteam^S0DEVS002>.",
    )
    assert "<#C0GENERAL>" in POLICY.can_request(ALICE, set(), "C0RANDOM1").reason


def test_everyone_may_request_when_no_requesters_are_set() -> None:
    open_policy = dataclasses.replace(POLICY, requesters=())
    assert open_policy.can_request(EVE, set(), GENERAL).allowed
    assert not open_policy.can_request(EVE, set(), "C0RANDOM1").allowed
    assert AccessPolicy().can_request(EVE, set(), DM).allowed


@pytest.mark.parametrize(
    ("user", "groups", "allowed"),
    [
        (BOB, set(), True),  # listed approver
        (DAVE, {OPS}, True),  # member of the approver group
        (CAROL, set(), True),  # admin
        (EVE, set(), False),
        (EVE, {DEVS}, False),
        (ALICE, {DEVS}, False),  # the requester, and not an approver anyway
    ],
)
def test_can_approve(user: str, groups: set[str], allowed: bool) -> None:
    assert POLICY.can_approve(user, groups, requester=ALICE).allowed is allowed


def test_approve_refusal_names_who_may_approve() -> None:
    assert POLICY.can_approve(EVE, set(), ALICE) == Decision(
        False,
        "Only <@U0BOB0002>, members of <!subteam^S0OPS0001> or an admin can approve this request.",
    )


@pytest.mark.parametrize(
    ("approver", "groups", "others"),
    [
        (BOB, set(), "members of <!subteam^S0OPS0001> or an admin"),
        (DAVE, {OPS}, "<@U0BOB0002>, members of <!subteam^S0OPS0001> or an admin"),
        (CAROL, set(), "<@U0BOB0002> or members of <!subteam^S0OPS0001>"),
    ],
    ids=["approver", "group-member", "admin"],
)
def test_nobody_approves_their_own_request(approver: str, groups: set[str], others: str) -> None:
    decision = POLICY.can_approve(approver, groups, requester=approver)
    assert decision == Decision(
        False, f"You cannot approve your own request; ask {others} to approve it."
    )
    allowed = dataclasses.replace(POLICY, allow_self_approval=True)
    assert allowed.can_approve(approver, groups, requester=approver).allowed


def test_a_lone_approver_is_not_told_to_ask_themselves() -> None:
    policy = AccessPolicy(approvers=(BOB,), admins=(CAROL,))
    assert policy.can_approve(BOB, set(), BOB).reason == (
        "You cannot approve your own request; ask an admin (<@W0CAROL03>) to approve it."
    )
    alone = AccessPolicy(approvers=(BOB,))
    assert alone.can_approve(BOB, set(), BOB).reason == (
        "You cannot approve your own request, and nobody else can approve it; ask whoever "
        "runs vfbot to add an approver."
    )


def test_self_approval_does_not_make_a_requester_an_approver() -> None:
    policy = dataclasses.replace(POLICY, allow_self_approval=True)
    assert not policy.can_approve(EVE, set(), requester=EVE).allowed


def test_admins_approve_when_no_approvers_are_configured() -> None:
    policy = AccessPolicy(admins=(CAROL, "U0ADMIN02"))
    assert policy.can_approve(CAROL, set(), ALICE).allowed
    assert policy.can_approve(EVE, {OPS}, ALICE) == Decision(
        False, "Only an admin (<@W0CAROL03> or <@U0ADMIN02>) can approve this request."
    )
    assert policy.approver_targets() == [CAROL, "U0ADMIN02"]


def test_nobody_can_approve_without_approvers_or_admins() -> None:
    decision = AccessPolicy().can_approve(EVE, set(), ALICE)
    assert decision == Decision(
        False,
        "Nobody can approve requests yet: VF_APPROVERS, VF_APPROVER_GROUPS and VF_ADMINS are "
        "empty. Ask whoever runs vfbot to set them.",
    )


def test_refusal_reasons_never_render_invalid_entries() -> None:
    policy = AccessPolicy(approvers=("<!channel>", "bob", BOB), approver_groups=("ops",))
    reason = policy.can_approve(EVE, set(), ALICE).reason
    assert reason == "Only <@U0BOB0002> can approve this request."
    assert policy.approver_targets() == [BOB]


def test_long_lists_are_shortened() -> None:
    approvers = tuple(f"U0APPR{n:03d}" for n in range(12))
    reason = AccessPolicy(approvers=approvers).can_approve(EVE, set(), ALICE).reason
    assert reason.count("<@") == 8
    assert "or 4 more can approve" in reason


def test_is_admin_and_targets() -> None:
    assert POLICY.is_admin(CAROL)
    assert not POLICY.is_admin(BOB)
    assert POLICY.approver_targets() == [BOB, OPS]


# -- validate ----------------------------------------------------------------------------------


def test_valid_policy_has_no_problems() -> None:
    assert POLICY.validate() == []
    assert POLICY.warnings() == []


def test_invalid_entries_are_reported_safely() -> None:
    policy = AccessPolicy(
        requesters=("C0GENERAL",),
        approvers=("bob", OPS),
        approver_groups=(BOB,),
        admins=(CAROL, "<!channel>"),
        allowed_channels=(DM, "#general"),
    )
    problems = policy.validate()
    assert problems == [
        'VF_REQUESTERS entry 1 ("C0GENERAL") is not a user id (U…) or user-group id (S…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_APPROVERS entry 1 ("bob") is not a user id (U…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_APPROVERS entry 2 ("S0OPS0001") is not a user id (U…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_APPROVER_GROUPS entry 1 ("U0BOB0002") is not a user-group id (S…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_ADMINS entry 2 ("??channel?") is not a user id (U…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_ALLOWED_CHANNELS entry 1 ("D0DIRECT1") is not a channel id (C… or G…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
        'VF_ALLOWED_CHANNELS entry 2 ("?general") is not a channel id (C… or G…); '
        "copy the id from Slack (profile or channel details → Copy ID)",
    ]


def test_approval_required_but_nobody_can_approve() -> None:
    rule = ApprovalRule.parse("servers>3")
    policy = AccessPolicy(approvers=("bob",), approval=rule)
    assert policy.validate()[-1] == (
        "approval is required (VF_REQUIRE_APPROVAL: more than 3 servers) but nobody can "
        "approve; set VF_APPROVERS, VF_APPROVER_GROUPS or VF_ADMINS, or set "
        "VF_REQUIRE_APPROVAL=never"
    )
    assert AccessPolicy(approval=ApprovalRule.parse("never")).validate() == []
    assert AccessPolicy(approver_groups=(OPS,)).validate() == []
    assert AccessPolicy(admins=(CAROL,)).validate() == []


def test_a_lone_approver_without_self_approval_is_a_warning() -> None:
    policy = AccessPolicy(approvers=(BOB,), admins=(BOB,))
    assert policy.validate() == []
    assert policy.warnings() == [
        "U0BOB0002 is the only approver and VF_ALLOW_SELF_APPROVAL is false, so requests "
        "U0BOB0002 makes can never be approved; add another approver or an approver group"
    ]
    assert dataclasses.replace(policy, allow_self_approval=True).warnings() == []
    assert dataclasses.replace(policy, approval=ApprovalRule(always=False)).warnings() == []
    assert AccessPolicy(approvers=(BOB,), admins=(CAROL,)).warnings() == []


# -- from settings -----------------------------------------------------------------------------

REQUIRED_ENV = {
    "VIRTFUSION_HOST": "https://panel.example.com",
    "VIRTFUSION_API_TOKEN": "test-token",
    "VIRTFUSION_USER_ID": "1",
    "VIRTFUSION_PACKAGE_ID": "1",
}


def load_settings_for_slack(**env: str) -> Settings:
    return load_settings({**REQUIRED_ENV, **env}, env_file=None)


def test_from_settings() -> None:
    settings = load_settings_for_slack(
        VF_REQUIRE_APPROVAL="servers>2",
        VF_APPROVERS=f"{BOB}, <@{DAVE}|dave>",
        VF_APPROVER_GROUPS=OPS,
        VF_ALLOW_SELF_APPROVAL="true",
        VF_ALLOWED_CHANNELS=f"{GENERAL},{INFRA}",
        VF_REQUESTERS=DEVS,
        VF_ADMINS=CAROL,
    )
    assert AccessPolicy.from_settings(settings) == AccessPolicy(
        requesters=(DEVS,),
        approvers=(BOB, DAVE),
        approver_groups=(OPS,),
        admins=(CAROL,),
        allowed_channels=(GENERAL, INFRA),
        allow_self_approval=True,
        approval=ApprovalRule(always=False, max_servers=2),
    )


def test_from_settings_with_a_bad_rule() -> None:
    settings = load_settings_for_slack(VF_REQUIRE_APPROVAL="sometimes")
    with pytest.raises(ValueError, match="not a rule"):
        AccessPolicy.from_settings(settings)
