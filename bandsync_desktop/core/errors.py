"""Typed errors with stable codes; the server turns them into protocol ``error`` messages."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """Stable, documented error codes. Clients may switch on these; never rename one."""

    INVALID_PAYLOAD = "INVALID_PAYLOAD"
    INVALID_SESSION_ID = "INVALID_SESSION_ID"
    INVALID_NAME = "INVALID_NAME"
    INVALID_TEMPO = "INVALID_TEMPO"
    INVALID_METER = "INVALID_METER"
    INVALID_POSITION = "INVALID_POSITION"
    INVALID_ROLE = "INVALID_ROLE"
    INVALID_MESSAGE = "INVALID_MESSAGE"
    INVALID_COUNT_IN = "INVALID_COUNT_IN"
    INVALID_SONG = "INVALID_SONG"
    INVALID_CUE = "INVALID_CUE"
    INVALID_CALL = "INVALID_CALL"
    INVALID_SETLIST = "INVALID_SETLIST"
    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_EXISTS = "SESSION_EXISTS"
    SESSION_FULL = "SESSION_FULL"
    NOT_IN_SESSION = "NOT_IN_SESSION"
    NOT_LEADER = "NOT_LEADER"
    LEADER_KEY_REQUIRED = "LEADER_KEY_REQUIRED"
    MEMBER_NOT_FOUND = "MEMBER_NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    TOO_MANY_SESSIONS = "TOO_MANY_SESSIONS"
    STORE_UNAVAILABLE = "STORE_UNAVAILABLE"
    CONFLICT = "CONFLICT"
    INTERNAL = "INTERNAL"


class BandSyncError(Exception):
    """A refused request. Carries a stable ``code`` and a human-readable ``message``."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str, code: ErrorCode | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.message = message

    def to_payload(self, event: str | None = None) -> dict[str, object]:
        """The protocol form: ``{code, message, event}``."""
        return {"code": str(self.code), "message": self.message, "event": event}


class ValidationError(BandSyncError):
    """A payload field is missing, of the wrong type, or out of range."""

    code = ErrorCode.INVALID_PAYLOAD


class SessionNotFound(BandSyncError):
    code = ErrorCode.SESSION_NOT_FOUND


class SessionExists(BandSyncError):
    code = ErrorCode.SESSION_EXISTS


class SessionFull(BandSyncError):
    code = ErrorCode.SESSION_FULL


class NotInSession(BandSyncError):
    code = ErrorCode.NOT_IN_SESSION


class NotLeader(BandSyncError):
    code = ErrorCode.NOT_LEADER


class LeaderKeyRequired(BandSyncError):
    code = ErrorCode.LEADER_KEY_REQUIRED


class MemberNotFound(BandSyncError):
    code = ErrorCode.MEMBER_NOT_FOUND


class TooManySessions(BandSyncError):
    """A new session would pass the cap for one address or for the server."""

    code = ErrorCode.TOO_MANY_SESSIONS


class StoreUnavailable(BandSyncError):
    """The shared store cannot be reached and this node cannot tell what it holds."""

    code = ErrorCode.STORE_UNAVAILABLE


class VersionConflict(BandSyncError):
    """A versioned write lost a race; the caller reloads and retries."""

    code = ErrorCode.CONFLICT
