"""Who may request and approve, where, and when approval is needed; pure, no Slack calls.

Slack ids are only ever rendered after matching their pattern, so text from settings can
never smuggle a mention such as `<!channel>` into a message.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

from bot.slack.mrkdwn import escape
from bot.slack.mrkdwn import mention as mention_text

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "AccessPolicy",
    "Actor",
    "ApprovalRule",
    "Decision",
    "is_channel_id",
    "is_group_id",
    "is_user_id",
    "mention",
    "normalize_id",
]

MB_PER_GB: Final = 1024
_MENTION_LIMIT: Final = 8

_USER: Final = re.compile(r"[UW][A-Z0-9]{2,20}")
_GROUP: Final = re.compile(r"S[A-Z0-9]{2,20}")
_CHANNEL: Final = re.compile(r"[CGD][A-Z0-9]{2,20}")
# Mention syntax people paste from Slack: <@U123|bob>, <!subteam^S123|@ops>, <#C123|general>.
_WRAPPED: Final = re.compile(r"<(?:@|!subteam\^|#)([A-Z0-9]+)(?:\|[^>]*)?>")
_THRESHOLD: Final = re.compile(r"(servers|memory_gb|disk_gb)\s*>\s*([0-9]+)")
_RULE_EXAMPLES: Final = (
    'use "always", "never", or thresholds any of which requires approval, e.g. "servers>3", '
    '"memory_gb>16" or "servers>3, memory_gb>64, disk_gb>500"'
)


def is_user_id(value: str) -> bool:
    """Whether `value` is a Slack user id (`U…`, or `W…` on Enterprise Grid)."""
    return _USER.fullmatch(value) is not None


def is_group_id(value: str) -> bool:
    """Whether `value` is a Slack user-group id (`S…`)."""
    return _GROUP.fullmatch(value) is not None


def is_channel_id(value: str) -> bool:
    """Whether `value` is a Slack conversation id (`C…`, `G…` private, `D…` direct message)."""
    return _CHANNEL.fullmatch(value) is not None


def normalize_id(value: str) -> str:
    """An id as configured, with surrounding spaces and pasted mention syntax removed."""
    value = value.strip()
    wrapped = _WRAPPED.fullmatch(value)
    return wrapped[1] if wrapped else value


def mention(slack_id: str) -> str:
    """Mrkdwn that mentions a user, user group or channel id.

    Raises ValueError for anything that is not a valid id, so arbitrary text is never rendered.
    """
    if is_user_id(slack_id):
        return f"<@{slack_id}>"
    if is_group_id(slack_id):
        return f"<!subteam^{slack_id}>"
    if is_channel_id(slack_id):
        return f"<#{slack_id}>"
    raise ValueError("not a Slack user, user-group or channel id")


def _join(parts: list[str]) -> str:
    """`a, b or c`, naming at most a few parts and counting the rest."""
    if len(parts) > _MENTION_LIMIT:
        parts = [*parts[:_MENTION_LIMIT], f"{len(parts) - _MENTION_LIMIT} more"]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " or " + parts[-1]


def _valid(ids: Iterable[str]) -> list[str]:
    return [i for i in dict.fromkeys(ids) if is_user_id(i) or is_group_id(i) or is_channel_id(i)]


def _mentions(ids: Iterable[str]) -> str:
    """`<@U1>, <@U2> or <!subteam^S1>`; invalid ids are skipped, so arbitrary text never shows."""
    return _join([mention(i) for i in _valid(ids)])


def _safe(value: str, allowed: str = r"A-Za-z0-9_.@-") -> str:
    """A configured value for a config problem; characters Slack markup needs become `?`."""
    cleaned = re.sub(f"[^{allowed}]", "?", value)
    return cleaned if len(cleaned) <= 40 else cleaned[:39] + "…"


@dataclass(frozen=True, slots=True)
class ApprovalRule:
    """When a request needs approval: always, never, or above any of the thresholds.

    Thresholds are exclusive ("more than"); unset ones never trigger.
    """

    always: bool = True
    max_servers: int | None = None
    max_memory_gb: int | None = None
    max_disk_gb: int | None = None

    @classmethod
    def parse(cls, text: str) -> ApprovalRule:
        """Read VF_REQUIRE_APPROVAL: `always`, `never` or `servers>N, memory_gb>M, disk_gb>D`.

        Raises ValueError naming the bad part and showing valid examples.
        """
        value = text.strip().lower()
        if value == "always":
            return cls(always=True)
        if value == "never":
            return cls(always=False)
        if not value:
            raise ValueError(f"is empty; {_RULE_EXAMPLES}")
        limits: dict[str, int] = {}
        for part in value.split(","):
            match = _THRESHOLD.fullmatch(part.strip())
            if match is None:
                # `<`, `>` and `=` are kept to show the typo; `!`, `@`, `#` and `^` are not.
                shown = (
                    f'"{_safe(part.strip(), r"A-Za-z0-9_.<>= -")}"'
                    if part.strip()
                    else "an empty item"
                )
                raise ValueError(f"has {shown}, which is not a rule; {_RULE_EXAMPLES}")
            if match[1] in limits:
                raise ValueError(f"gives {match[1]} twice; {_RULE_EXAMPLES}")
            limits[match[1]] = int(match[2])
        return cls(
            always=False,
            max_servers=limits.get("servers"),
            max_memory_gb=limits.get("memory_gb"),
            max_disk_gb=limits.get("disk_gb"),
        )

    @property
    def never(self) -> bool:
        """Whether no request ever needs approval."""
        return not self.always and not self._thresholds()

    def _thresholds(self) -> list[tuple[int, str]]:
        found: list[tuple[int, str]] = []
        if self.max_servers is not None:
            noun = "server" if self.max_servers == 1 else "servers"
            found.append((self.max_servers, f"more than {self.max_servers} {noun}"))
        if self.max_memory_gb is not None:
            found.append((self.max_memory_gb, f"more than {self.max_memory_gb} GB memory"))
        if self.max_disk_gb is not None:
            found.append((self.max_disk_gb, f"more than {self.max_disk_gb} GB disk"))
        return found

    def required(self, *, servers: int, memory_mb: int, disk_gb: int) -> bool:
        """Whether a request of these totals (all its servers together) needs approval."""
        if self.always:
            return True
        return (
            (self.max_servers is not None and servers > self.max_servers)
            or (self.max_memory_gb is not None and memory_mb > self.max_memory_gb * MB_PER_GB)
            or (self.max_disk_gb is not None and disk_gb > self.max_disk_gb)
        )

    def describe(self) -> str:
        """The rule in words: "more than 3 servers or more than 16 GB memory"."""
        if self.always:
            return "every request"
        parts = [text for _, text in self._thresholds()]
        return " or ".join(parts) if parts else "no request"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to "may this user do this here?"; `reason` is mrkdwn for the user."""

    allowed: bool
    reason: str = ""


_ALLOWED: Final = Decision(True)
_NOBODY_APPROVES: Final = (
    "Nobody can approve requests yet: VF_APPROVERS, VF_APPROVER_GROUPS and VF_ADMINS are "
    "empty. Ask whoever runs vfbot to set them."
)


def _ids(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(v for v in map(normalize_id, values) if v))


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, with the roles the access policy gives them."""

    user: str
    groups: frozenset[str]
    admin: bool
    approver: bool  # may approve (approver, approver-group member or admin)


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    """Who may request and approve servers, and in which channels.

    Entries are Slack ids: users `U…`/`W…`, user groups `S…`, channels `C…`/`G…`; pasted
    mentions (`<@U123|bob>`) are reduced to their id. Empty `requesters` means everyone and
    empty `allowed_channels` means every channel.
    """

    requesters: tuple[str, ...] = ()
    approvers: tuple[str, ...] = ()
    approver_groups: tuple[str, ...] = ()
    admins: tuple[str, ...] = ()
    allowed_channels: tuple[str, ...] = ()
    allow_self_approval: bool = False
    approval: ApprovalRule = field(default_factory=ApprovalRule)

    def __post_init__(self) -> None:
        for name in ("requesters", "approvers", "approver_groups", "admins", "allowed_channels"):
            object.__setattr__(self, name, _ids(getattr(self, name)))

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        """The policy the settings describe.

        Raises ValueError when VF_REQUIRE_APPROVAL cannot be read.
        """
        return cls(
            requesters=tuple(settings.vf_requesters),
            approvers=tuple(settings.vf_approvers),
            approver_groups=tuple(settings.vf_approver_groups),
            admins=tuple(settings.vf_admins),
            allowed_channels=tuple(settings.vf_allowed_channels),
            allow_self_approval=settings.vf_allow_self_approval,
            approval=ApprovalRule.parse(settings.vf_require_approval),
        )

    # -- questions -------------------------------------------------------------------------------

    def is_admin(self, user: str) -> bool:
        """Whether `user` is listed in VF_ADMINS."""
        return user in self.admins

    def channel_allowed(self, channel_id: str) -> Decision:
        """Whether vfbot takes requests in this conversation."""
        if not self.allowed_channels or channel_id in self.allowed_channels:
            return _ALLOWED
        where = _mentions(self.allowed_channels)
        if not where:
            return Decision(False, "vfbot is not enabled in any channel yet; ask an admin.")
        here = "in direct messages" if channel_id.startswith("D") else "in this channel"
        return Decision(False, f"vfbot does not take requests {here}; use {where}.")

    def can_request(self, user: str, groups: Collection[str], channel: str) -> Decision:
        """Whether `user` (a member of `groups`) may request servers in `channel`.

        Admins always may; otherwise the channel must be allowed and, when VF_REQUESTERS is
        set, the user or one of their groups must be listed.
        """
        return self.can_use(self.actor(user, groups), channel, creating=True)

    def _is_requester(self, actor: Actor) -> bool:
        if not self.requesters or actor.user in self.requesters:
            return True
        return any(group in self.requesters for group in actor.groups)

    def can_use(self, actor: Actor, channel: str | None, *, creating: bool = False) -> Decision:
        """Whether `actor` may use vfbot at all here: asked for every command, click and
        submission, so a change to the settings counts at once, even for a dialog opened before.

        Admins may anywhere. Everyone else needs an allowed channel (`channel` None: a personal
        surface such as the Home tab, which is in no channel) and to be a requester (in
        VF_REQUESTERS, or everyone when it is empty); approvers may use everything but creating
        without being requesters. What they may do to which request or server is asked next.
        """
        if actor.admin:
            return _ALLOWED
        if channel is not None:
            channel_ok = self.channel_allowed(channel)
            if not channel_ok.allowed:
                return channel_ok
        if self._is_requester(actor) or (actor.approver and not creating):
            return _ALLOWED
        who = _mentions(self.requesters)
        if creating:
            open_to = f" Requests are open to {who}." if who else ""
            return Decision(False, f"You are not allowed to request servers.{open_to}")
        open_to = f" It is open to {who} and the approvers." if who else ""
        return Decision(False, f"You are not allowed to use vfbot.{open_to}")

    def _may_approve(self, user: str, groups: Collection[str]) -> bool:
        if self.is_admin(user) or user in self.approvers:
            return True
        return any(group in self.approver_groups for group in groups)

    def _approvers_text(self, besides: str = "") -> str | None:
        """Who (other than `besides`) may approve, as mrkdwn, or None when nobody may."""
        users = [u for u in _valid(self.approvers) if is_user_id(u) and u != besides]
        groups = [g for g in _valid(self.approver_groups) if is_group_id(g)]
        admins = [a for a in _valid(self.admins) if is_user_id(a) and a != besides]
        parts = [mention(u) for u in users] + [f"members of {mention(g)}" for g in groups]
        if parts:
            return _join([*parts, "an admin"] if admins else parts)
        return f"an admin ({_mentions(admins)})" if admins else None

    def can_approve(self, user: str, groups: Collection[str], requester: str) -> Decision:
        """Whether `user` (a member of `groups`) may approve a request made by `requester`.

        Approvers, members of approver groups and admins may, but never the requester unless
        self-approval is allowed.
        """
        if not self._may_approve(user, groups):
            who = self._approvers_text()
            if who is None:
                return Decision(False, _NOBODY_APPROVES)
            return Decision(False, f"Only {who} can approve this request.")
        if user == requester and not self.allow_self_approval:
            others = self._approvers_text(besides=user)
            if others is None:
                return Decision(
                    False,
                    "You cannot approve your own request, and nobody else can approve it; "
                    "ask whoever runs vfbot to add an approver.",
                )
            return Decision(
                False, f"You cannot approve your own request; ask {others} to approve it."
            )
        return _ALLOWED

    def actor(self, user: str, groups: Collection[str]) -> Actor:
        """`user` (a member of `groups`) with the roles this policy gives them."""
        return Actor(
            user=user,
            groups=frozenset(groups),
            admin=self.is_admin(user),
            approver=self._may_approve(user, groups),
        )

    def can_act_on_server(self, actor: Actor, requester: str | None, label: str) -> Decision:
        """Day-2 actions: requesters on the servers they requested, approvers on every server
        vfbot created, admins on every server of the vfbot owner (`requester` None: vfbot did
        not create it)."""
        if actor.admin:
            return _ALLOWED
        if requester is None:
            return Decision(
                False, f"Only an admin can act on {escape(label)}: vfbot did not create it."
            )
        if actor.approver or requester == actor.user:
            return _ALLOWED
        return Decision(
            False,
            f"Only {mention_text(requester)} (who requested it), the approvers or an admin can "
            f"act on {escape(label)}.",
        )

    def can_see_request(self, actor: Actor, requester: str, human_id: str, verb: str) -> Decision:
        """Listing or showing one request (`verb`: "list", "see"): its requester, approvers and
        admins."""
        if actor.admin or actor.approver or requester == actor.user:
            return _ALLOWED
        return Decision(
            False, f"Only {mention_text(requester)}, approvers or admins can {verb} {human_id}."
        )

    def can_fix_request(self, actor: Actor, requester: str, human_id: str) -> Decision:
        """Retry failed / Clean up: the requester, the approvers or an admin."""
        if actor.user == requester or actor.approver:
            return _ALLOWED
        return Decision(
            False,
            f"Only {mention_text(requester)}, the approvers or an admin can do that for "
            f"{human_id}.",
        )

    def can_cancel(
        self, actor: Actor, requester: str, human_id: str, *, delete_needs_approval: bool
    ) -> Decision:
        """`/vf cancel`: the requester, the approvers or an admin, as Retry failed and Clean up.

        Cancelling with `delete` deletes the request's servers at once, so a requester may do
        that only where a delete of those servers would need no approval
        (`delete_needs_approval`, from VF_REQUIRE_APPROVAL); approvers and admins always may.
        """
        if actor.approver:
            return _ALLOWED
        if actor.user != requester:
            return Decision(
                False,
                f"Only {mention_text(requester)}, the approvers or an admin can cancel {human_id}.",
            )
        if delete_needs_approval:
            who = self._approvers_text(besides=actor.user) or "an approver"
            return Decision(
                False,
                f"Deleting the servers of {human_id} needs an approval (VF_REQUIRE_APPROVAL: "
                f"{self.approval.describe()}). Cancel it without `delete` and delete each "
                f"server with `/vf delete` (that asks for the approval), or ask {who}.",
            )
        return _ALLOWED

    def admins_only(self, actor: Actor, refusal: str) -> Decision:
        """Something only VF_ADMINS may do; `refusal` says what and what to do instead."""
        return _ALLOWED if actor.admin else Decision(False, refusal)

    def approver_targets(self) -> list[str]:
        """Valid user and group ids to notify about a pending request (admins if no approvers)."""
        configured = [*self.approvers, *self.approver_groups]
        targets = configured if configured else list(self.admins)
        return [t for t in targets if is_user_id(t) or is_group_id(t)]

    # -- configuration ---------------------------------------------------------------------------

    def validate(self) -> list[str]:
        """Problems with the configuration, one sentence each; empty when it is usable."""
        problems: list[str] = []
        checks = (
            ("VF_REQUESTERS", self.requesters, "a user id (U…) or user-group id (S…)"),
            ("VF_APPROVERS", self.approvers, "a user id (U…)"),
            ("VF_APPROVER_GROUPS", self.approver_groups, "a user-group id (S…)"),
            ("VF_ADMINS", self.admins, "a user id (U…)"),
            ("VF_ALLOWED_CHANNELS", self.allowed_channels, "a channel id (C… or G…)"),
        )
        for variable, values, expected in checks:
            for index, value in enumerate(values, start=1):
                if not _fits(variable, value):
                    problems.append(
                        f'{variable} entry {index} ("{_safe(value)}") is not {expected}; '
                        "copy the id from Slack (profile or channel details → Copy ID)"
                    )
        if self.approval.never:
            return problems
        approvers = {u for u in (*self.approvers, *self.admins) if is_user_id(u)}
        groups = [g for g in self.approver_groups if is_group_id(g)]
        if not approvers and not groups:
            problems.append(
                "approval is required (VF_REQUIRE_APPROVAL: "
                f"{self.approval.describe()}) but nobody can approve; set VF_APPROVERS, "
                "VF_APPROVER_GROUPS or VF_ADMINS, or set VF_REQUIRE_APPROVAL=never"
            )
        return problems

    def warnings(self) -> list[str]:
        """Settings that work but are probably not meant, one sentence each."""
        if self.approval.never or self.allow_self_approval or self.approver_groups:
            return []
        approvers = {u for u in (*self.approvers, *self.admins) if is_user_id(u)}
        if len(approvers) != 1:
            return []
        (only,) = approvers
        return [
            f"{only} is the only approver and VF_ALLOW_SELF_APPROVAL is false, so requests "
            f"{only} makes can never be approved; add another approver or an approver group"
        ]


def _fits(variable: str, value: str) -> bool:
    if variable == "VF_REQUESTERS":
        return is_user_id(value) or is_group_id(value)
    if variable == "VF_APPROVER_GROUPS":
        return is_group_id(value)
    if variable == "VF_ALLOWED_CHANNELS":
        return is_channel_id(value) and not value.startswith("D")
    return is_user_id(value)
