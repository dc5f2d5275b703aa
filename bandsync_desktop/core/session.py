"""A band session: members, leadership, the transport timeline and the rules that change them.

Every method that changes the session checks its preconditions first and raises a
``BandSyncError`` before touching anything, so a refused command changes nothing. An accepted
change bumps ``version`` and returns the notices to broadcast (``(event, payload)`` pairs of
the protocol); the server sends a fresh snapshot after them.

Leadership (see design.md):

* *Open* sessions (created ad hoc by a remote join): any member may take the lead with
  ``set_role leader``; the previous leader becomes a follower.
* *Protected* sessions (the console's band session, or created with a leader key):
  leadership moves only by hand-over (leader or console) or by presenting the key.
* When the leader disconnects, playback pauses at once and the seat is held for
  ``leader_grace_ms`` for the same ``clientId``. After that an open session elects its
  earliest-joined member; a protected session returns the lead to the console when the
  console hosts it, and otherwise waits for the key.

The console acts with the authority of the server's owner: ``CONSOLE`` may give every
leader command in every session and can hold the lead itself.
"""

from __future__ import annotations

import functools
import hashlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from . import conductor, validation
from .conductor import Call, CallAt, Show
from .errors import (
    BandSyncError,
    ErrorCode,
    LeaderKeyRequired,
    MemberNotFound,
    NotInSession,
    NotLeader,
    SessionFull,
    ValidationError,
)
from .song import SongMap
from .stageset import StageSet
from .timeline import Boundary, Timeline, bar_beat
from .validation import Role

CONSOLE: Final = "~console"  # the console's actor id; "~" can never appear in a client's id
CONSOLE_NAME: Final = "Console"
ANONYMOUS_PREFIX: Final = "~s:"  # members who sent no clientId are keyed by their socket


@functools.lru_cache(maxsize=4096)  # every snapshot names every member: hash each id once
def member_id(client_id: str) -> str:
    """The public id of a member: stable across reconnects, but not the ``clientId``.

    A ``clientId`` is what re-attaches a device to its seat (and its lead), so it works as a
    secret of that device and never goes on the wire; others see this digest instead.
    """
    if client_id == CONSOLE:
        return "console"
    return "m-" + hashlib.sha256(client_id.encode()).hexdigest()[:16]


FORMAT: Final = 1  # version of the stored form of a session

Notice = tuple[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Rules:
    """Tunable limits of the session rules."""

    leader_grace_ms: float = 10_000.0
    member_memory_ms: float = 30 * 60_000.0  # how long a departed member keeps seniority
    max_members: int = 64
    lead_ms: float = 200.0  # how far ahead of now a scheduled change takes effect


@dataclass(slots=True)
class Member:
    """A connected member. ``client_id`` is stable across reconnects; ``socket_id`` is not."""

    client_id: str
    socket_id: str
    display_name: str
    joined_at: float
    device: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "clientId": self.client_id,
            "socketId": self.socket_id,
            "displayName": self.display_name,
            "joinedAt": self.joined_at,
            "device": self.device,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Member:
        return cls(
            client_id=str(data["clientId"]),
            socket_id=str(data["socketId"]),
            display_name=str(data["displayName"]),
            joined_at=float(data["joinedAt"]),
            device=None if data.get("device") is None else str(data["device"]),
        )


@dataclass(slots=True)
class AwayMember:
    """A member who left; kept for a while so a reconnect keeps its seniority."""

    display_name: str
    joined_at: float
    left_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "displayName": self.display_name,
            "joinedAt": self.joined_at,
            "leftAt": self.left_at,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AwayMember:
        return cls(str(data["displayName"]), float(data["joinedAt"]), float(data["leftAt"]))


@dataclass(frozen=True, slots=True)
class Song:
    """What the leader put on the stands: a title and a chart (chords/lyrics), optional, and
    the song's form (``core/song.SongMap``: sections with their tempo, meter and ramps), which
    the conductor plays when there is one."""

    title: str
    chart: str = ""
    form: SongMap | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"title": self.title, "chart": self.chart}
        if self.form is not None:
            data["sections"] = self.form.to_dict()["sections"]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Song:
        sections = data.get("sections")
        form = SongMap.from_dict({"sections": sections}) if sections else None
        return cls(str(data["title"]), str(data.get("chart", "")), form)


SegueAt = Literal["bar", "section", "end"]


@dataclass(frozen=True, slots=True)
class Segue:
    """The next song, straight on: its count-in starts on the downbeat the song playing
    stops on: the next one (``"bar"``), the end of this section (an end call) or the end of
    the song as it is played (``"end"``, a vamp holds it off). ``at_ms`` is that instant
    once it is on the timeline, ``bar`` the playing song's bar it is the downbeat of."""

    song: Song
    tempo_bpm: float | None
    meter: tuple[int, int] | None
    count_in_bars: int | None
    at: SegueAt
    at_ms: float | None = None
    bar: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "song": self.song.to_dict(),
            "tempo": self.tempo_bpm,
            "meter": list(self.meter) if self.meter else None,
            "countInBars": self.count_in_bars,
            "at": self.at,
            "atMs": self.at_ms,
            "bar": self.bar,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segue:
        meter = data.get("meter")
        at = data.get("at")
        if at not in ("bar", "section", "end"):
            raise ValueError(f"not a segue: {at!r}")
        return cls(
            song=Song.from_dict(data["song"]),
            tempo_bpm=data.get("tempo"),
            meter=(int(meter[0]), int(meter[1])) if meter else None,
            count_in_bars=data.get("countInBars"),
            at=at,
            at_ms=data.get("atMs"),
            bar=data.get("bar"),
        )


CuePhase = Literal["pending", "showing", "over"]


@dataclass(frozen=True, slots=True)
class Cue:
    """A stage cue ("2× CHORUS"): shown full width on every phone from the downbeat of
    ``bar`` for ``hold_bars`` bars.

    ``bar`` (1-based, as the snapshot's ``bar``) is what every device compares with the bar
    its timeline is at, so the cue lands on the same bar whatever tempo or meter changes
    happen before it: bars are continuous across both. ``at_beat`` is that bar's first beat
    and ``at_ms`` its server time as the timeline schedules it now (both kept up to date
    while the cue is pending; informative, since a tempo change moves the instant).
    """

    id: int
    text: str
    bar: int
    at_beat: float
    at_ms: float
    hold_bars: int

    @property
    def until_bar(self) -> int:
        """The first bar without the cue: it disappears on that bar's downbeat."""
        return self.bar + self.hold_bars

    def to_wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "text": self.text,
            "atBar": self.bar,
            "atBeat": self.at_beat,
            "atServerTime": self.at_ms,
            "holdBars": self.hold_bars,
        }

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Cue:
        return cls(
            id=int(data["id"]),
            text=str(data["text"]),
            bar=int(data["atBar"]),
            at_beat=float(data["atBeat"]),
            at_ms=float(data["atServerTime"]),
            hold_bars=int(data["holdBars"]),
        )


def cue_phase(cue: Cue, timeline: Timeline, now_ms: float) -> tuple[CuePhase, int]:
    """Where ``cue`` is at ``now_ms``: ``('pending', bars to go)``, ``('showing', bars left
    to hold)`` or ``('over', 0)``. The page computes the same from the snapshot (cue.js)."""
    bar = timeline.bar_beat_at(now_ms).bar
    if bar < cue.bar:
        return "pending", cue.bar - bar
    if bar < cue.until_bar:
        return "showing", cue.until_bar - bar
    return "over", 0


#: A bar that starts where its segment does, within the float noise of epoch milliseconds
#: (one ulp of 1.7e12 is 0.24 µs; a few operations add up to a few).
_BAR_SLACK_MS: Final = 0.01


def _bar_start(timeline: Timeline, bar: int) -> tuple[float, float] | None:
    """``(beat, server time)`` of the downbeat of ``bar`` (1-based) as ``timeline`` plays
    it from its first segment on, or ``None`` when no playing segment reaches it (paused, or
    already past). Each segment counts bars in its own meter; bars are continuous across
    segments, so the first segment in whose stretch the bar starts is the one."""
    segments = timeline.segments
    for index, segment in enumerate(segments):
        if not segment.playing:
            continue
        end = segments[index + 1].start_ms if index + 1 < len(segments) else math.inf
        beat = float((bar - 1) * segment.beats_per_bar)
        at = segment.time_of_beat(beat)
        if segment.start_ms - _BAR_SLACK_MS <= at < end:
            return beat, max(at, segment.start_ms)
    return None


@dataclass(slots=True)
class Session:
    """The whole shared state of one band session."""

    session_id: str
    created_at: float
    timeline: Timeline
    protected: bool = False
    console_hosted: bool = False
    leader_key: str | None = None
    leader_id: str | None = None  # client id of the leader, CONSOLE, or None
    held_leader_id: str | None = None  # a departed leader whose seat is held
    vacant_since: float | None = None  # when the leader disconnected (election pending)
    members: dict[str, Member] = field(default_factory=dict)
    away: dict[str, AwayMember] = field(default_factory=dict)
    message: str = ""
    count_in_bars: int = 0
    song: Song | None = None
    version: int = 1
    last_activity: float = 0.0
    cue: Cue | None = None
    cue_seq: int = 0  # the last cue's id: every new cue gets the next one
    show: Show = field(default_factory=Show)  # the leader's calls on the song's form
    setlist: StageSet | None = None  # the set, as the phones list it
    segue: Segue | None = None  # the next song, straight on, when the leader called one

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        session_id: str,
        now_ms: float,
        *,
        protected: bool = False,
        console_hosted: bool = False,
        tempo_bpm: float = 120.0,
        beats_per_bar: int = 4,
        beat_unit: int = 4,
    ) -> Session:
        """A new session, paused at the top. A protected one gets a fresh leader key."""
        session = cls(
            session_id=validation.session_id(session_id),
            created_at=now_ms,
            timeline=Timeline.stopped(now_ms, tempo_bpm, beats_per_bar, beat_unit),
            protected=protected or console_hosted,
            console_hosted=console_hosted,
            leader_key=secrets.token_urlsafe(12) if (protected or console_hosted) else None,
            leader_id=CONSOLE if console_hosted else None,
            last_activity=now_ms,
        )
        return session

    # -- queries ------------------------------------------------------------------------------

    def member_by_socket(self, socket_id: str) -> Member | None:
        for member in self.members.values():
            if member.socket_id == socket_id:
                return member
        return None

    def find_member(self, ref: str) -> Member:
        """A member by a public id: its ``memberId`` or its current ``socketId``.

        Never by ``clientId``: a client chooses its own, so one that picked another member's
        public id as its clientId would be found in that member's place (and handed the lead
        meant for them). Public ids and the private one never share a namespace.
        """
        for member in self.members.values():
            if member_id(member.client_id) == ref:
                return member
        by_socket = self.member_by_socket(ref)
        if by_socket is None:
            raise MemberNotFound(f"no member {ref!r} in session {self.session_id!r}")
        return by_socket

    @property
    def leader(self) -> Member | None:
        return self.members.get(self.leader_id) if self.leader_id else None

    def role_of(self, client_id: str) -> Role:
        return "leader" if client_id == self.leader_id else "follower"

    def may_lead(self, actor: str) -> bool:
        return actor == CONSOLE or actor == self.leader_id

    def is_idle(self, now_ms: float, idle_ms: float) -> bool:
        """No one connected and nothing changed for ``idle_ms``. The console's never idles."""
        if self.console_hosted or self.members:
            return False
        return now_ms - self.last_activity >= idle_ms

    def _require_leader(self, actor: str) -> None:
        if actor != CONSOLE and actor not in self.members:
            raise NotInSession(f"you are not in session {self.session_id!r}")
        if not self.may_lead(actor):
            raise NotLeader("only the leader may do that")

    def _changed(self, now_ms: float) -> None:
        self.version += 1
        self.last_activity = max(self.last_activity, now_ms)
        self.timeline = self.timeline.pruned(now_ms)
        self._rebase_cue(now_ms)

    def _rebase_cue(self, now_ms: float) -> None:
        """A pending cue's first beat and instant as the timeline now plays its bar (a tempo
        or meter change, a play, moves them; the bar stays). A cue that landed keeps both."""
        cue = self.cue
        if cue is None or self.timeline.bar_beat_at(now_ms).bar >= cue.bar:
            return
        found = _bar_start(self.timeline, cue.bar)
        if found is not None and found != (cue.at_beat, cue.at_ms):
            self.cue = replace(cue, at_beat=found[0], at_ms=found[1])

    def _drop_cue(self, now_ms: float, reason: str) -> list[Notice]:
        """Take the cue off (a new song, a stop, a seek: its bar no longer comes as it was
        set for); the room is told unless it was over already."""
        cue = self.cue
        if cue is None:
            return []
        self.cue = None
        if cue_phase(cue, self.timeline, now_ms)[0] == "over":
            return []
        return [self._cue_notice(now_ms, reason)]

    def _cue_notice(self, now_ms: float, reason: str) -> Notice:
        return (
            "cue",
            {
                "sessionId": self.session_id,
                "cue": self.cue.to_wire() if self.cue else None,
                "reason": reason,
                "serverTimestamp": now_ms,
            },
        )

    def _key_matches(self, key: str | None) -> bool:
        return (
            key is not None
            and self.leader_key is not None
            and secrets.compare_digest(key.encode(), self.leader_key.encode())
        )

    def _check_claim(self, client_id: str, key: str | None) -> None:
        """Raise unless ``client_id`` may take the lead now."""
        if not self.protected:
            return
        if self._key_matches(key) or client_id == self.held_leader_id:
            return
        raise LeaderKeyRequired(
            f"session {self.session_id!r} is protected: hand-over or the leader key is needed"
        )

    def _set_leader(self, new_leader: str | None, reason: str) -> list[Notice]:
        previous = self.leader_id
        self.leader_id = new_leader
        self.held_leader_id = None
        self.vacant_since = None
        if previous == new_leader:
            return []
        return [("role_changed", self._role_payload(previous, reason))]

    def _role_payload(self, previous: str | None, reason: str) -> dict[str, Any]:
        leader = self.leader
        previous_member = self.members.get(previous) if previous else None
        return {
            "sessionId": self.session_id,
            "leaderSocketId": leader.socket_id if leader else None,
            "leaderMemberId": member_id(self.leader_id) if self.leader_id else None,
            "leaderName": self._leader_name(),
            "previousLeaderSocketId": previous_member.socket_id if previous_member else None,
            "previousLeaderMemberId": member_id(previous) if previous else None,
            "reason": reason,
        }

    def _leader_name(self) -> str | None:
        if self.leader_id == CONSOLE:
            return CONSOLE_NAME
        leader = self.leader
        return leader.display_name if leader else None

    def _pause_now(self, now_ms: float) -> list[Notice]:
        if self.segue is not None:  # a pause, a stop, a new song take a segue back
            if self.segue.at_ms is not None:
                self.timeline = self.timeline.before(self.segue.at_ms)
            self.segue = None
        if not self.timeline.latest.playing:
            return []
        if self.form is not None:
            # At once, not after what the conductor placed ahead (up to 2 s of the song's
            # form): that is taken back, and a call it had placed waits again for the resume.
            self._take_back_after(now_ms)
        at = self.timeline.effective_time(now_ms, "now")
        self.timeline = self.timeline.paused(at)
        return [("pause", self._transport_payload(now_ms, at))]

    def _transport_payload(self, now_ms: float, at_ms: float) -> dict[str, Any]:
        latest = self.timeline.latest
        return {
            "sessionId": self.session_id,
            "positionMs": self.timeline.position_at(max(now_ms, at_ms)),
            "tempoBpm": latest.end_tempo_bpm,
            "isPlaying": latest.playing,
            "effectiveAt": at_ms,
            "serverTimestamp": now_ms,
        }

    # -- membership ---------------------------------------------------------------------------

    def join(
        self,
        now_ms: float,
        socket_id: str,
        *,
        client_id: str | None,
        display_name: str | None,
        role: Role | None,
        key: str | None,
        device: str | None,
        rules: Rules,
    ) -> tuple[Member, str | None, list[Notice]]:
        """Add (or re-attach) a member. Returns the member, the socket it replaced, notices."""
        cid = client_id or ANONYMOUS_PREFIX + socket_id
        existing = self.members.get(cid)
        away = self.away.get(cid)
        if existing is None and len(self.members) >= rules.max_members:
            raise SessionFull(f"session {self.session_id!r} is full ({rules.max_members} members)")
        default_name = (
            existing.display_name
            if existing
            else away.display_name
            if away
            else f"Player {len(self.members) + 1}"
        )
        name = validation.display_name(display_name, default_name)
        returning_leader = self.held_leader_id == cid
        if role == "leader" and self.leader_id != cid and not returning_leader:
            self._check_claim(cid, key)

        notices: list[Notice] = []
        replaced: str | None = None
        if existing is not None:
            replaced = existing.socket_id if existing.socket_id != socket_id else None
            existing.socket_id = socket_id
            existing.display_name = name
            existing.device = device or existing.device
            member = existing
        else:
            joined_at = away.joined_at if away else now_ms
            member = Member(cid, socket_id, name, joined_at, device)
            self.members[cid] = member
            self.away.pop(cid, None)
            notices.append(
                ("user_joined", {"sessionId": self.session_id, "member": self.member_wire(member)})
            )
        if returning_leader:
            notices += self._set_leader(cid, "returned")
        elif role == "leader" and self.leader_id != cid:
            notices += self._set_leader(cid, "claimed")
        self._changed(now_ms)
        return member, replaced, notices

    def leave(self, now_ms: float, client_id: str, *, disconnected: bool) -> list[Notice]:
        """A member leaves. A disconnect holds the leader's seat; an explicit leave does not."""
        member = self.members.pop(client_id, None)
        if member is None:
            raise NotInSession(f"you are not in session {self.session_id!r}")
        self.away[client_id] = AwayMember(member.display_name, member.joined_at, now_ms)
        notices: list[Notice] = [
            (
                "user_left",
                {
                    "sessionId": self.session_id,
                    "socketId": member.socket_id,
                    "memberId": member_id(member.client_id),
                    "displayName": member.display_name,
                },
            )
        ]
        if client_id == self.leader_id:
            notices += self._pause_now(now_ms)
            notices += self._set_leader(None, "leader_left")
            if disconnected:
                self.held_leader_id = client_id
            self.vacant_since = now_ms
            notices += self._elect_if_due(now_ms, grace_ms=None if disconnected else 0.0)
        self._changed(now_ms)
        return notices

    def remove(self, now_ms: float, actor: str, target: str) -> tuple[Member, list[Notice]]:
        """The leader (or console) removes a member. Their seat is not held."""
        self._require_leader(actor)
        member = self.find_member(target)
        notices = self.leave(now_ms, member.client_id, disconnected=False)
        self.away.pop(member.client_id, None)
        return member, notices

    def absorb_members(self, other: Session, limit: int) -> int:
        """Members of ``other`` (another incarnation of this id, made by a node that could not
        see this one) join this one as followers, up to ``limit`` members in all. Their joins
        were accepted, so they are not lost; nothing else of ``other`` is taken (its leader,
        key and transport were never this session's). Returns how many joined."""
        added = 0
        for cid, member in sorted(other.members.items(), key=lambda kv: kv[1].joined_at):
            if cid in self.members or len(self.members) >= limit:
                continue
            self.members[cid] = Member(
                cid, member.socket_id, member.display_name, member.joined_at, member.device
            )
            self.away.pop(cid, None)
            added += 1
        if added:
            self.version += 1
            self.last_activity = max(self.last_activity, other.last_activity)
        return added

    # -- leadership ---------------------------------------------------------------------------

    def set_role(self, now_ms: float, client_id: str, role: Role, key: str | None) -> list[Notice]:
        """``set_role`` from a member: claim the lead (open, or with the key) or step down."""
        if client_id not in self.members:
            raise NotInSession(f"you are not in session {self.session_id!r}")
        if role == "leader":
            if self.leader_id == client_id:
                return []
            self._check_claim(client_id, key)
            notices = self._set_leader(client_id, "claimed")
        else:
            if self.leader_id != client_id:
                return []
            notices = self._set_leader(None, "stepped_down")
        self._changed(now_ms)
        return notices

    def hand_over(self, now_ms: float, actor: str, target: str) -> list[Notice]:
        """The leader or the console passes the lead to a member (or, console only, to itself)."""
        self._require_leader(actor)
        if target == CONSOLE:
            if actor != CONSOLE:
                raise NotLeader("only the console can take the lead back to itself")
            new_leader = CONSOLE
        else:
            new_leader = self.find_member(target).client_id
        notices = self._set_leader(new_leader, "handed_over")
        if notices:
            self._changed(now_ms)
        return notices

    def _elect_if_due(self, now_ms: float, grace_ms: float | None) -> list[Notice]:
        if self.leader_id is not None or self.vacant_since is None:
            return []
        if grace_ms is None or now_ms - self.vacant_since < grace_ms:
            return []
        if self.console_hosted:
            return self._set_leader(CONSOLE, "elected")
        if self.protected:
            self.held_leader_id = None  # the seat is no longer held; the key is needed now
            return []
        if not self.members:
            return []
        earliest = min(self.members.values(), key=lambda m: (m.joined_at, m.client_id))
        return self._set_leader(earliest.client_id, "elected")

    def housekeeping_due(self, now_ms: float, rules: Rules) -> bool:
        """Whether ``housekeeping`` would change anything now (cheap; no copy needed)."""
        if (
            self.vacant_since is not None
            and self.leader_id is None
            and now_ms - self.vacant_since >= rules.leader_grace_ms
        ):
            if self.console_hosted:
                return True
            if self.protected:
                return self.held_leader_id is not None
            if self.members:
                return True
        return any(now_ms - a.left_at >= rules.member_memory_ms for a in self.away.values())

    def housekeeping(self, now_ms: float, rules: Rules) -> list[Notice]:
        """Periodic upkeep: elect a leader once the grace period is over, release a held seat
        (a protected session without the console), forget old members.

        Anything it changes bumps the version, so the store keeps it: a released seat that
        was not saved would hand the old leader the lead back, without the key, long after
        the grace period.
        """
        held_before = self.held_leader_id
        notices = self._elect_if_due(now_ms, rules.leader_grace_ms)
        stale = [
            cid for cid, a in self.away.items() if now_ms - a.left_at >= rules.member_memory_ms
        ]
        for cid in stale:
            del self.away[cid]
        if notices:
            self._changed(now_ms)
        elif stale or self.held_leader_id != held_before:
            self.version += 1
        return notices

    # -- transport (leader only) --------------------------------------------------------------

    def _schedule(self, now_ms: float, boundary: Boundary, rules: Rules) -> float:
        self._replan_from(now_ms, rules)
        latest = self.timeline.latest
        if not latest.playing:
            return self.timeline.effective_time(now_ms, "now")
        return self.timeline.effective_time(now_ms + rules.lead_ms, boundary)

    def set_tempo(
        self, now_ms: float, actor: str, tempo_bpm: float, boundary: Boundary, rules: Rules
    ) -> list[Notice]:
        self._require_leader(actor)
        at = self._schedule(now_ms, boundary, rules)
        self.timeline = self.timeline.with_tempo(at, tempo_bpm)
        self._place(now_ms)
        self._changed(now_ms)
        return [
            (
                "tempo_changed",
                {
                    "sessionId": self.session_id,
                    "tempoBpm": tempo_bpm,
                    "effectiveAt": at,
                    "serverTimestamp": now_ms,
                },
            )
        ]

    def set_meter(
        self,
        now_ms: float,
        actor: str,
        beats_per_bar: int,
        beat_unit: int,
        boundary: Boundary,
        rules: Rules,
    ) -> list[Notice]:
        self._require_leader(actor)
        at = self._schedule(now_ms, boundary, rules)
        self.timeline = self.timeline.with_meter(at, beats_per_bar, beat_unit)
        self._place(now_ms)
        self._changed(now_ms)
        return [
            (
                "meter_changed",
                {
                    "sessionId": self.session_id,
                    "beatsPerBar": beats_per_bar,
                    "beatUnit": beat_unit,
                    "effectiveAt": at,
                },
            )
        ]

    def set_count_in(self, now_ms: float, actor: str, bars: int) -> list[Notice]:
        self._require_leader(actor)
        self.count_in_bars = bars
        self._changed(now_ms)
        return []

    def play(
        self, now_ms: float, actor: str, rules: Rules, count_in_bars: int | None = None
    ) -> list[Notice]:
        """Start at ``now + lead``, after the session's count-in (or the one given)."""
        self._require_leader(actor)
        if self.timeline.latest.playing:
            return []
        bars = self.count_in_bars if count_in_bars is None else count_in_bars
        at = self.timeline.effective_time(now_ms + rules.lead_ms, "now")
        self.timeline = self.timeline.played(at, bars * self.timeline.latest.beats_per_bar)
        if self.form is not None:  # the section there gives meter and tempo, count-in too
            self.timeline = conductor.begin(self.timeline, self.form, at)
            self._place(now_ms)
        self._changed(now_ms)
        payload = self._transport_payload(now_ms, at)
        payload["downbeatAt"] = self.timeline.latest.anchor_ms
        payload["countInBars"] = bars
        return [("play", payload)]

    def pause(self, now_ms: float, actor: str) -> list[Notice]:
        self._require_leader(actor)
        notices = self._pause_now(now_ms)
        if notices:
            self._changed(now_ms)
        return notices

    def stop(self, now_ms: float, actor: str) -> list[Notice]:
        """Pause and go back to the top of the song (the stage cue goes too)."""
        self._require_leader(actor)
        notices = self._drop_cue(now_ms, "stop")
        notices += self._forget_calls(now_ms, "stop")
        notices += self._pause_now(now_ms)
        at = self.timeline.effective_time(now_ms, "now")
        self.timeline = self.timeline.sought(at, 0.0)
        notices.append(("seek", self._transport_payload(now_ms, at)))
        self._changed(now_ms)
        return notices

    def seek(self, now_ms: float, actor: str, position_ms: float, rules: Rules) -> list[Notice]:
        """Go to a song position (the stage cue goes: its bar is counted afresh)."""
        self._require_leader(actor)
        notices = self._drop_cue(now_ms, "seek")
        at = self._schedule(now_ms, "now", rules)
        if self.form is not None:  # the bar there as the form counts it, and its section
            self.timeline = conductor.seek(self.timeline, self.form, at, position_ms)
            notices += self._forget_calls(now_ms, "seek")
            self._place(now_ms)
        else:
            self.timeline = self.timeline.sought(at, position_ms)
        self._changed(now_ms)
        return [*notices, ("seek", self._transport_payload(now_ms, at))]

    def set_message(self, now_ms: float, actor: str, text: str) -> list[Notice]:
        self._require_leader(actor)
        self.message = text
        self._changed(now_ms)
        return [("message_updated", {"sessionId": self.session_id, "message": text})]

    def set_song(
        self,
        now_ms: float,
        actor: str,
        song: Song | None,
        tempo_bpm: float | None,
        meter: tuple[int, int] | None,
        count_in_bars: int | None,
        rules: Rules,
    ) -> list[Notice]:
        """Put a song on the stands: title/chart, and its tempo, meter and count-in if given.

        Choosing a song while playing stops the transport and goes to the song's top: a new
        song starts from its first bar. The stage cue goes (it was for the last song).
        """
        self._require_leader(actor)
        notices = self._drop_cue(now_ms, "song")
        notices += self._forget_calls(now_ms, "song")
        notices += self._pause_now(now_ms)
        at = self.timeline.effective_time(now_ms, "now")
        self.timeline = _song_top(self.timeline, at, song, tempo_bpm, meter)
        if count_in_bars is not None:
            self.count_in_bars = count_in_bars
        self.song = song
        self._changed(now_ms)
        notices.append(
            (
                "song_changed",
                {"sessionId": self.session_id, "song": song.to_dict() if song else None},
            )
        )
        return notices

    def set_setlist(self, now_ms: float, actor: str, setlist: StageSet | None) -> list[Notice]:
        """Show the set on every phone (or take it off): its songs, the one on the stands.
        Nothing plays from it; the song on the stands is still ``set_song``'s."""
        self._require_leader(actor)
        self.setlist = setlist
        self._changed(now_ms)
        wire = setlist.to_wire() if setlist is not None else None
        return [("setlist", {"sessionId": self.session_id, "setlist": wire})]

    # -- stage cues (leader only) -------------------------------------------------------------

    def set_cue(
        self,
        now_ms: float,
        actor: str,
        text: str,
        in_bars: int,
        hold_bars: int,
        rules: Rules,
    ) -> list[Notice]:
        """Put a stage cue on every phone, on a bar: the next downbeat at least
        ``rules.lead_ms`` away (so every phone hears of it first) plus ``in_bars`` bars; held
        for ``hold_bars`` bars. While stopped it shows at once, on the bar the transport
        stands in (plus ``in_bars``). It replaces the cue before it."""
        self._require_leader(actor)
        latest = self.timeline.latest
        per_bar = latest.beats_per_bar
        if latest.playing:
            at = self.timeline.effective_time(now_ms + rules.lead_ms, "bar")
            index = round(latest.beat_at(at) / per_bar) + in_bars  # at is a downbeat
            beat = float(index * per_bar)
            at = max(at, latest.time_of_beat(beat))
        else:
            at = self.timeline.effective_time(now_ms, "now")
            index = bar_beat(latest.beat, per_bar).bar - 1 + in_bars
            beat = float(index * per_bar)
        self.cue_seq += 1
        self.cue = Cue(self.cue_seq, text, index + 1, beat, at, hold_bars)
        self._changed(now_ms)
        return [self._cue_notice(now_ms, "set")]

    def clear_cue(self, now_ms: float, actor: str) -> list[Notice]:
        """Take the stage cue off every phone at once (nothing to do without one)."""
        self._require_leader(actor)
        if self.cue is None:
            return []
        self.cue = None
        self._changed(now_ms)
        return [self._cue_notice(now_ms, "cleared")]

    # -- the song's form: sections and the leader's calls -------------------------------------

    @property
    def form(self) -> SongMap | None:
        """The form of the song on the stands (sections, tempos, meters), if it has one."""
        return self.song.form if self.song is not None else None

    def _replan_from(self, now_ms: float, rules: Rules) -> None:
        """Before a leader's change to a song with a form: take back what the conductor
        placed after the change's earliest instant (``now + lead``; no phone plays it yet),
        so the change lands where the leader asked, not after a boundary placed ahead;
        ``_place`` then puts the form back on top of it. A change of the leader's own still
        pending after that instant goes too: the newer one wins.

        Refused while the next song of a segue is on the timeline (a bar or two before it
        starts): a pause or a stop takes it back first.
        """
        if self.segue is not None and self.segue.at_ms is not None:
            raise ValidationError(
                "the next song starts in a moment: pause or stop to take the segue back",
                ErrorCode.INVALID_CALL,
            )
        if self.form is not None:
            self._take_back_after(now_ms + rules.lead_ms)

    def _take_back_after(self, t_ms: float) -> None:
        """Take back what was placed on the timeline after ``t_ms``; a call the conductor had
        placed there waits again, to be placed anew (a tempo change 1 s before a jump placed
        ahead lost the jump: the phones counted down to it and the band played on)."""
        self.timeline = self.timeline.until(t_ms)
        show = self.show
        if show.placed is not None and show.placed_at is not None and show.placed_at > t_ms:
            waiting = show.call or show.placed
            self.show = replace(show, call=waiting, placed=None, placed_at=None, vamp_ends_at=None)

    def _place(self, now_ms: float) -> bool:
        """Put on the timeline what the form and the calls bring within the conductor's
        horizon (``core/conductor.plan``); True when anything changed."""
        form = self.form
        segue = self.segue
        if form is None or (segue is not None and segue.at_ms is not None):
            return False  # (after a segue's instant the timeline is the next song's)
        before = self.timeline.latest
        timeline, show = conductor.plan(self.timeline, form, self.show, now_ms)
        if timeline is self.timeline and show == self.show:
            return False
        self.timeline, self.show = timeline, show
        latest = timeline.latest
        if segue is not None and not latest.playing and latest.start_ms > before.start_ms:
            self._start_next(latest.start_ms, segue)  # the song stops there: the next starts
        return True

    def conduct(self, now_ms: float) -> list[Notice]:
        """The server's periodic step for a playing song with a form (no actor: the form
        and the leader's calls already say what happens). Nothing changes, and nothing is
        published, unless a boundary or a call came within the horizon, a call landed or the
        next song of a segue began."""
        notices = self.settle(now_ms)
        before, segue = self.show, self.segue
        if not self._place(now_ms):
            return notices
        self._changed(now_ms)
        if self.segue is not segue:
            notices.append(self._show_notice(now_ms, "segue"))
        elif self.show.coming != before.coming or self.show.vamp != before.vamp:
            notices.append(self._show_notice(now_ms, "landed" if before.call is None else "placed"))
        return notices

    def would_conduct(self, now_ms: float) -> bool:
        """Whether ``conduct`` would change anything now (read only: a node asks this of
        its cached copy before it takes the session's lock)."""
        segue = self.segue
        if segue is not None and segue.at_ms is not None:
            return segue.at_ms <= now_ms  # the next song has begun: it goes on the stands
        form = self.form
        if form is None or (not self.timeline.latest.playing and self.show.placed is None):
            return False
        timeline, show = conductor.plan(self.timeline, form, self.show, now_ms)
        return timeline is not self.timeline or show != self.show

    # -- the next song, straight on (a segue) --------------------------------------------------

    def set_segue(
        self,
        now_ms: float,
        actor: str,
        song: Song | None,
        tempo_bpm: float | None,
        meter: tuple[int, int] | None,
        count_in_bars: int | None,
        at: SegueAt,
        rules: Rules,
    ) -> list[Notice]:
        """Call the next song, straight on: on the downbeat the song playing stops on (the
        next bar; the end of this section; the end of the song) the next one starts with its
        count-in, at its tempo and meter, from its top. ``song=None`` takes a segue back."""
        self._require_leader(actor)
        if song is None:
            segue = self.segue
            if segue is None:
                return []
            if segue.at_ms is not None:
                self.timeline = self.timeline.before(segue.at_ms)
            elif segue.bar is not None and self.show.call == Call("end", segue.bar):
                self.show = replace(self.show, call=None)  # its end goes too: the song plays on
            self.segue = None
            self._changed(now_ms)
            return [self._show_notice(now_ms, "segue")]
        if not (self.timeline.latest.playing or self.timeline.is_playing_at(now_ms)):
            raise ValidationError(
                "nothing is playing to go on from: put the song on the stands",
                ErrorCode.INVALID_CALL,
            )
        form = self.form
        if form is None and at != "bar":
            raise ValidationError(
                "the song playing has no sections: a segue goes at the next bar",
                ErrorCode.INVALID_CALL,
            )
        self._replan_from(now_ms, rules)  # (refused while a segue is on the timeline)
        segue = Segue(song, tempo_bpm, meter, count_in_bars, at)
        if at == "bar" or form is None:
            self.show = Show()
            self._start_next(self.timeline.effective_time(now_ms + rules.lead_ms, "bar"), segue)
        else:
            if at == "section":
                bar = conductor.call_bar(self.timeline, form, now_ms + rules.lead_ms, "section")
                self.show = replace(self.show, call=Call("end", bar))
            else:
                bar = form.total_bars + 1
            self.segue = replace(segue, bar=bar)
            self._place(now_ms)
            latest = self.timeline.latest
            if self.segue.at_ms is None and not latest.playing and latest.start_ms > now_ms:
                # the song's end was placed within the lead already: the next starts there
                self._start_next(latest.start_ms, self.segue)
        self._changed(now_ms)
        return [self._show_notice(now_ms, "segue")]

    def _start_next(self, at_ms: float, segue: Segue) -> None:
        """From ``at_ms``, a downbeat, the timeline is the next song's: its top, its tempo and
        meter (its first section's, unless the call said), its count-in, playing."""
        bar = conductor.song_bar_at(self.timeline, at_ms)
        paused = self.timeline.paused(at_ms)
        timeline = _song_top(paused, at_ms, segue.song, segue.tempo_bpm, segue.meter)
        form = segue.song.form
        bars = self.count_in_bars if segue.count_in_bars is None else segue.count_in_bars
        timeline = timeline.played(at_ms, bars * timeline.latest.beats_per_bar)
        if form is not None:
            timeline = conductor.begin(timeline, form, at_ms)
        self.timeline = timeline
        self.segue = replace(segue, at_ms=at_ms, bar=bar)
        self.show = Show()

    def settle(self, now_ms: float) -> list[Notice]:
        """What is due before anything else happens at ``now_ms``: the next song of a segue
        whose instant has come goes on the stands (its timeline is already playing)."""
        segue = self.segue
        if segue is None or segue.at_ms is None or segue.at_ms > now_ms:
            return []
        self.segue = None
        notices = self._drop_cue(now_ms, "song")
        self.song = segue.song
        notices += self._set_moves_on(segue.song.title)
        if segue.count_in_bars is not None:
            self.count_in_bars = segue.count_in_bars
        self.show = Show()
        self._changed(now_ms)
        play = self._transport_payload(now_ms, segue.at_ms)
        play["downbeatAt"] = self.timeline.segment_at(segue.at_ms).anchor_ms
        play["countInBars"] = self.count_in_bars
        notices += [
            ("song_changed", {"sessionId": self.session_id, "song": segue.song.to_dict()}),
            ("play", play),
            self._show_notice(now_ms, "segue"),
        ]
        return notices

    def _set_moves_on(self, title: str) -> list[Notice]:
        """The set's current song moves on to ``title`` when it is the set's next."""
        setlist = self.setlist
        following = setlist.next if setlist is not None else None
        if setlist is None or following is None or following.title != title:
            return []
        index = 0 if setlist.current is None else setlist.current + 1
        self.setlist = replace(setlist, current=index)
        return [("setlist", {"sessionId": self.session_id, "setlist": self.setlist.to_wire()})]

    def _forget_calls(self, now_ms: float, reason: str) -> list[Notice]:
        """A stop, a seek or a new song ends the vamp and the calls waiting."""
        if self.show == Show():
            return []
        self.show = Show()
        return [self._show_notice(now_ms, reason)]

    def _require_form(self) -> SongMap:
        form = self.form
        if form is None:
            raise ValidationError(
                "the song on the stands has no sections to call", ErrorCode.INVALID_CALL
            )
        return form

    def call(
        self,
        now_ms: float,
        actor: str,
        kind: Literal["jump", "end"],
        at: CallAt,
        section: int | str | None,
        rules: Rules,
    ) -> list[Notice]:
        """The leader's call on the song's form: jump to ``section`` (an index or a name) or
        end, at the next downbeat at least ``rules.lead_ms`` away (``"bar"``) or at the end
        of the section playing (``"section"``). It replaces a call waiting; while stopped a
        jump goes there at once (a seek to the section) and an end is refused."""
        self._require_leader(actor)
        form = self._require_form()
        index = None if kind == "end" else _section_index(form, section)
        if not self.timeline.latest.playing:
            if kind == "end":
                raise ValidationError("nothing is playing to end", ErrorCode.INVALID_CALL)
            assert index is not None
            return self.seek(now_ms, actor, form.section_start_ms(index), rules)
        self._replan_from(now_ms, rules)
        bar = conductor.call_bar(self.timeline, form, now_ms + rules.lead_ms, at)
        self.show = replace(self.show, call=Call(kind, bar, index))
        self._place(now_ms)
        self._changed(now_ms)
        return [self._show_notice(now_ms, kind)]

    def set_vamp(self, now_ms: float, actor: str, on: bool, rules: Rules) -> list[Notice]:
        """Vamp: repeat the section playing until released (``on=False``). Released, the
        song goes on from the end of the section as it is written."""
        self._require_leader(actor)
        form = self._require_form()
        if on:
            bar = conductor.song_bar_at(self.timeline, now_ms)
            vamp: int | None = form.section_of_bar(max(bar, 1))
        else:
            vamp = None
        if vamp == self.show.vamp:
            return []
        self._replan_from(now_ms, rules)
        self.show = replace(self.show, vamp=vamp, vamp_ends_at=None)
        self._place(now_ms)
        self._changed(now_ms)
        return [self._show_notice(now_ms, "vamp" if on else "release")]

    def show_wire(self) -> dict[str, Any]:
        """The calls as the phones show them: ``{vamp, call}``; ``call`` is the one the band
        waits for (``kind``, the song's ``bar`` it lands on, ``section``, ``sectionName``,
        and ``atServerTime`` once it is on the timeline)."""
        show, form = self.show, self.form
        coming = show.coming
        call = coming.to_wire(form) if coming is not None else None
        if call is not None:
            if show.call is None and show.placed_at is not None:
                call["atServerTime"] = show.placed_at
            else:
                found = _bar_start(self.timeline, coming.bar) if coming else None
                call["atServerTime"] = found[1] if found else None
        vamp = show.vamp
        segue = self.segue
        return {
            "vamp": vamp,
            "vampName": form.sections[vamp].name if form is not None and vamp is not None else None,
            "call": call,
            "segue": None
            if segue is None
            else {
                "title": segue.song.title,
                "at": segue.at,
                "bar": segue.bar,
                "atServerTime": segue.at_ms,
            },
        }

    def _show_notice(self, now_ms: float, reason: str) -> Notice:
        return (
            "show",
            {
                "sessionId": self.session_id,
                **self.show_wire(),
                "reason": reason,
                "serverTimestamp": now_ms,
            },
        )

    # -- wire ---------------------------------------------------------------------------------

    def member_wire(self, member: Member) -> dict[str, Any]:
        return {
            "socketId": member.socket_id,
            "memberId": member_id(member.client_id),
            "displayName": member.display_name,
            "role": self.role_of(member.client_id),
            "joinedAt": member.joined_at,
            "device": member.device,
        }

    def snapshot(self, now_ms: float) -> dict[str, Any]:
        """The full public state, as the protocol's ``snapshot`` (no leader key)."""
        latest = self.timeline.latest
        position = self.timeline.position_at(now_ms)
        leader = self.leader
        bb = self.timeline.bar_beat_at(now_ms)
        return {
            "sessionId": self.session_id,
            "version": self.version,
            # (the tempo once pending changes and ramps are over; segments say the rest)
            "tempo": latest.end_tempo_bpm,
            "tempoBpm": latest.end_tempo_bpm,
            "position": position,
            "positionMs": position,
            "isPlaying": latest.playing,
            "leaderSocketId": leader.socket_id if leader else None,
            "leaderMemberId": member_id(self.leader_id) if self.leader_id else None,
            "leaderName": self._leader_name(),
            "protected": self.protected,
            "message": self.message,
            "members": [
                self.member_wire(m)
                for m in sorted(self.members.values(), key=lambda m: (m.joined_at, m.client_id))
            ],
            "serverTimestamp": now_ms,
            "serverTime": now_ms,
            "anchorServerTime": latest.anchor_ms,
            "anchorPositionMs": latest.position_ms,
            "anchorBeat": latest.beat,
            "startServerTime": latest.start_ms,
            "beatsPerBar": latest.beats_per_bar,
            "beatUnit": latest.beat_unit,
            "countInBars": self.count_in_bars,
            "bar": bb.bar,
            "beat": bb.beat,
            "segments": self.timeline.to_wire(),
            "song": self.song.to_dict() if self.song else None,
            "cue": self.cue.to_wire() if self.cue else None,
            "show": self.show_wire(),
            "setlist": self.setlist.to_wire() if self.setlist else None,
        }

    def copy(self) -> Session:
        """An independent copy: what a store hands out and changes, so that a refused change
        leaves no trace. The timeline and the song are immutable and shared; members and
        away members are copied. (Much cheaper than a round trip through ``to_dict``.)"""
        return replace(
            self,
            members={cid: replace(m) for cid, m in self.members.items()},
            away={cid: replace(a) for cid, a in self.away.items()},
        )

    def to_dict(self) -> dict[str, Any]:
        """The stored form: everything, the leader key included."""
        return {
            "format": FORMAT,
            "sessionId": self.session_id,
            "createdAt": self.created_at,
            "segments": self.timeline.to_wire(),
            "protected": self.protected,
            "consoleHosted": self.console_hosted,
            "leaderKey": self.leader_key,
            "leaderId": self.leader_id,
            "heldLeaderId": self.held_leader_id,
            "vacantSince": self.vacant_since,
            "members": [m.to_dict() for m in self.members.values()],
            "away": {cid: a.to_dict() for cid, a in self.away.items()},
            "message": self.message,
            "countInBars": self.count_in_bars,
            "song": self.song.to_dict() if self.song else None,
            "version": self.version,
            "lastActivity": self.last_activity,
            "cue": self.cue.to_wire() if self.cue else None,
            "cueSeq": self.cue_seq,
            "show": _show_to_dict(self.show),
            "setlist": self.setlist.to_wire() if self.setlist else None,
            "segue": self.segue.to_dict() if self.segue else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Session:
        if data.get("format") != FORMAT:
            raise BandSyncError(
                f"stored session has format {data.get('format')!r}, expected {FORMAT}",
                ErrorCode.INTERNAL,
            )
        members = [Member.from_dict(m) for m in data.get("members", [])]
        return cls(
            session_id=str(data["sessionId"]),
            created_at=float(data["createdAt"]),
            timeline=Timeline.from_wire(data["segments"]),
            protected=bool(data["protected"]),
            console_hosted=bool(data.get("consoleHosted", False)),
            leader_key=data.get("leaderKey"),
            leader_id=data.get("leaderId"),
            held_leader_id=data.get("heldLeaderId"),
            vacant_since=data.get("vacantSince"),
            members={m.client_id: m for m in members},
            away={cid: AwayMember.from_dict(a) for cid, a in data.get("away", {}).items()},
            message=str(data.get("message", "")),
            count_in_bars=int(data.get("countInBars", 0)),
            song=Song.from_dict(data["song"]) if data.get("song") else None,
            version=int(data["version"]),
            last_activity=float(data.get("lastActivity", data["createdAt"])),
            cue=Cue.from_wire(data["cue"]) if data.get("cue") else None,
            cue_seq=int(data.get("cueSeq", 0)),
            show=_show_from_dict(data.get("show")),
            setlist=StageSet.from_wire(data["setlist"]) if data.get("setlist") else None,
            segue=Segue.from_dict(data["segue"]) if data.get("segue") else None,
        )


def carried_over(previous: Session, now_ms: float) -> Session:
    """The band session of a restarted console server: what the band had, stopped at the top.

    Tempo, meter, count-in, song, set, stage message and the leader key are kept (a phone that
    was given the key can still claim the lead with it). The transport is stopped at the top,
    as after any stop. Nobody is connected any more, so every member becomes away, keeping
    their seniority; a phone that led has its seat held exactly as if its connection had
    dropped (``Session.leave``), so it gets the lead back when it rejoins within the grace
    period, and the console takes it after that. The version counts on from the previous
    one, so a phone that kept the old state never mistakes the new one for older.

    Args:
        previous: the band session as the stopped server last had it.
        now_ms: the new server's time.
    """
    latest = previous.timeline.latest
    away = {
        cid: AwayMember(gone.display_name, gone.joined_at, now_ms)
        for cid, gone in previous.away.items()
    }
    for cid, member in previous.members.items():
        away[cid] = AwayMember(member.display_name, member.joined_at, now_ms)
    leader = previous.leader_id
    phone_led = leader is not None and leader != CONSOLE and leader in away
    held = leader if phone_led else previous.held_leader_id
    return Session(
        session_id=previous.session_id,
        created_at=now_ms,
        timeline=Timeline.stopped(
            now_ms, latest.end_tempo_bpm, latest.beats_per_bar, latest.beat_unit
        ),
        protected=previous.protected,
        console_hosted=previous.console_hosted,
        leader_key=previous.leader_key,
        leader_id=None if held is not None else CONSOLE,
        held_leader_id=held,
        vacant_since=now_ms if held is not None else None,
        away=away,
        message=previous.message,
        count_in_bars=previous.count_in_bars,
        song=previous.song,
        setlist=previous.setlist,
        version=previous.version + 1,
        last_activity=now_ms,
        cue_seq=previous.cue_seq,  # no cue: its bar was on the stopped server's timeline
    )


def _song_top(
    timeline: Timeline,
    at_ms: float,
    song: Song | None,
    tempo_bpm: float | None,
    meter: tuple[int, int] | None,
) -> Timeline:
    """``timeline`` from ``at_ms`` at the top of ``song``, at ``tempo_bpm`` and ``meter`` where
    given, else its form's first section's (else as it was)."""
    timeline = timeline.sought(at_ms, 0.0)
    form = song.form if song is not None else None
    if form is not None:
        first = form.sections[0]
        tempo_bpm = first.tempo_bpm if tempo_bpm is None else tempo_bpm
        meter = (first.beats_per_bar, first.beat_unit) if meter is None else meter
    if tempo_bpm is not None:
        timeline = timeline.with_tempo(at_ms, tempo_bpm)
    if meter is not None:
        timeline = timeline.with_meter(at_ms, *meter)
    return timeline


def _section_index(form: SongMap, section: int | str | None) -> int:
    """A section named by its index (0-based) or its name (the first of that name)."""
    if isinstance(section, int) and not isinstance(section, bool):
        if 0 <= section < len(form.sections):
            return section
        raise ValidationError(
            f"section must be 0 to {len(form.sections) - 1}", ErrorCode.INVALID_CALL
        )
    if isinstance(section, str):
        wanted = section.strip().casefold()
        for index, candidate in enumerate(form.sections):
            if candidate.name.casefold() == wanted:
                return index
        raise ValidationError("the song has no section of that name", ErrorCode.INVALID_CALL)
    raise ValidationError("section must be a section's index or name", ErrorCode.INVALID_CALL)


def _show_to_dict(show: Show) -> dict[str, Any]:
    return {
        "vamp": show.vamp,
        "call": show.call.to_wire() if show.call else None,
        "placed": show.placed.to_wire() if show.placed else None,
        "placedAt": show.placed_at,
        "vampEndsAt": show.vamp_ends_at,
    }


def _show_from_dict(data: Any) -> Show:
    if not isinstance(data, Mapping):
        return Show()
    call, placed = data.get("call"), data.get("placed")
    vamp, placed_at = data.get("vamp"), data.get("placedAt")
    return Show(
        vamp=int(vamp) if vamp is not None else None,
        call=Call.from_wire(call) if call else None,
        placed=Call.from_wire(placed) if placed else None,
        placed_at=float(placed_at) if placed_at is not None else None,
        vamp_ends_at=float(data["vampEndsAt"]) if data.get("vampEndsAt") is not None else None,
    )
