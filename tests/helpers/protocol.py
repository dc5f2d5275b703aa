"""What the protocol promises, written once for the tests that check it."""

from __future__ import annotations

#: Every field ``snapshot`` carries (design.md's list plus the timeline's).
SNAPSHOT_FIELDS = frozenset(
    {
        "sessionId",
        "tempo",
        "tempoBpm",
        "position",
        "positionMs",
        "isPlaying",
        "leaderSocketId",
        "leaderMemberId",
        "leaderName",
        "message",
        "members",
        "serverTimestamp",
        "serverTime",
        "version",
        "anchorServerTime",
        "anchorPositionMs",
        "anchorBeat",
        "startServerTime",
        "beatsPerBar",
        "beatUnit",
        "segments",
        "countInBars",
        "song",
        "cue",
        "show",
        "setlist",
    }
)
