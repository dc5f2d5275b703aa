"""Payload validation: every field a client may send, checked once, with a clear error.

Each function takes the raw JSON value and returns the clean Python value or raises a
``ValidationError`` subclass code. Booleans are never accepted as numbers (``True`` is an
``int`` in Python, not in anybody's tempo).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Final, Literal

from .errors import ErrorCode, ValidationError

TEMPO_MIN: Final = 20.0
TEMPO_MAX: Final = 280.0
BEATS_PER_BAR_MIN: Final = 1
BEATS_PER_BAR_MAX: Final = 16
BEAT_UNITS: Final = (2, 4, 8, 16)
COUNT_IN_MAX_BARS: Final = 4
NAME_MAX: Final = 40
MESSAGE_MAX: Final = 500
TITLE_MAX: Final = 120
CHART_MAX: Final = 20_000
POSITION_MAX_MS: Final = 24 * 3600 * 1000.0  # a day of song is more than any set
CUE_TEXT_MAX: Final = 40  # a stage cue is read from 2 m: a few words
CUE_IN_BARS_MAX: Final = 8
CUE_HOLD_BARS_MIN: Final = 1
CUE_HOLD_BARS_MAX: Final = 16
CUE_HOLD_BARS_DEFAULT: Final = 2

_ID_RE: Final = re.compile(r"[A-Za-z0-9_.:-]{1,64}")
#: Bidirectional controls: in a name they reorder what the console and the phones show
#: around it ("Ana" + RLO + "elosnoC" reads as a different member).
_BIDI_CONTROLS: Final = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: The leader console's name (core.session.CONSOLE_NAME): no member may take it.
_RESERVED_NAMES: Final = frozenset({"console"})

Role = Literal["leader", "follower"]
Quantize = Literal["now", "beat", "bar"]


def payload(value: Any) -> Mapping[str, Any]:
    """Every client->server payload is a JSON object."""
    if not isinstance(value, Mapping):
        raise ValidationError("payload must be a JSON object")
    return value


def _number(value: Any, field: str, code: ErrorCode) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValidationError(f"{field} must be a number", code)
    number = float(value)
    if not math.isfinite(number):
        raise ValidationError(f"{field} must be a finite number", code)
    return number


def finite(value: Any, field: str) -> float:
    """Any finite number (a measurement a client reports)."""
    return _number(value, field, ErrorCode.INVALID_PAYLOAD)


#: The output latency a phone takes back (its click sent that much early): Bluetooth adds
#: 150-300 ms, a little negative room is for a tap that lands early by habit. The follower
#: page's settings.js has the same limits.
OUTPUT_DELAY_MIN_MS: Final = -50.0
OUTPUT_DELAY_MAX_MS: Final = 400.0
#: The outputs a player tells apart on the page (no browser can tell them itself).
OUTPUTS: Final = ("speaker", "wired", "bluetooth")
Output = Literal["speaker", "wired", "bluetooth"]


def output_delay(value: Any) -> float:
    """A phone's output latency in ms, within OUTPUT_DELAY_MIN_MS..OUTPUT_DELAY_MAX_MS."""
    delay = _number(value, "outputDelayMs", ErrorCode.INVALID_PAYLOAD)
    if not OUTPUT_DELAY_MIN_MS <= delay <= OUTPUT_DELAY_MAX_MS:
        raise ValidationError(
            f"outputDelayMs must be {OUTPUT_DELAY_MIN_MS:g} to {OUTPUT_DELAY_MAX_MS:g} ms",
            ErrorCode.INVALID_PAYLOAD,
        )
    return delay


def output(value: Any) -> Output:
    """Which output a phone plays through: one of OUTPUTS."""
    if value == "speaker":
        return "speaker"
    if value == "wired":
        return "wired"
    if value == "bluetooth":
        return "bluetooth"
    raise ValidationError(f"output must be one of {', '.join(OUTPUTS)}", ErrorCode.INVALID_PAYLOAD)


def _identifier(value: Any, field: str, code: ErrorCode) -> str:
    if not isinstance(value, str) or not _ID_RE.fullmatch(value):
        raise ValidationError(
            f"{field} must be 1-64 characters of letters, digits and _ . : -", code
        )
    return value


def session_id(value: Any) -> str:
    """A session id: 1-64 characters of ``[A-Za-z0-9_.:-]``."""
    return _identifier(value, "sessionId", ErrorCode.INVALID_SESSION_ID)


def client_id(value: Any) -> str | None:
    """An optional stable client id (same alphabet as session ids); ``None`` when absent."""
    if value is None:
        return None
    return _identifier(value, "clientId", ErrorCode.INVALID_PAYLOAD)


def _text(value: Any, field: str, limit: int, code: ErrorCode, *, multiline: bool) -> str:
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string", code)
    allowed = {"\n", "\t"} if multiline else set()
    for char in value:
        if char not in allowed and unicodedata.category(char) in ("Cc", "Cs"):
            raise ValidationError(f"{field} must not contain control characters", code)
    if len(value) > limit:
        raise ValidationError(f"{field} must be at most {limit} characters", code)
    return value


def display_name(value: Any, default: str) -> str:
    """A member's display name: trimmed, 1-40 characters, no control characters.

    A missing (``None``) name gets ``default``; an empty or blank one is an error, because
    the client asked for a name and would not see the one it typed.
    """
    if value is None:
        return default
    name = _text(value, "displayName", 10_000, ErrorCode.INVALID_NAME, multiline=False).strip()
    if not name:
        raise ValidationError("displayName must not be empty", ErrorCode.INVALID_NAME)
    if len(name) > NAME_MAX:
        raise ValidationError(
            f"displayName must be at most {NAME_MAX} characters", ErrorCode.INVALID_NAME
        )
    if any(char in _BIDI_CONTROLS for char in name):
        raise ValidationError(
            "displayName must not contain text-direction controls", ErrorCode.INVALID_NAME
        )
    if name.casefold() in _RESERVED_NAMES:
        raise ValidationError(f"{name!r} is the leader console's name", ErrorCode.INVALID_NAME)
    return name


def tempo(value: Any) -> float:
    """Tempo in beats per minute: a finite number in 20-280."""
    bpm = _number(value, "tempo", ErrorCode.INVALID_TEMPO)
    if not TEMPO_MIN <= bpm <= TEMPO_MAX:
        raise ValidationError(
            f"tempo must be between {TEMPO_MIN:g} and {TEMPO_MAX:g} BPM, got {bpm:g}",
            ErrorCode.INVALID_TEMPO,
        )
    return bpm


def _whole(value: Any, field: str, code: ErrorCode) -> int:
    """A whole number (``4`` or ``4.0``); NaN, infinities and fractions are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (isinstance(value, float) and not value.is_integer())  # also NaN and +-inf
    ):
        raise ValidationError(f"{field} must be a whole number", code)
    return int(value)


def meter(beats_per_bar: Any, beat_unit: Any) -> tuple[int, int]:
    """A meter: 1-16 beats per bar over a beat unit of 2, 4, 8 or 16."""
    beats = _whole(beats_per_bar, "beatsPerBar", ErrorCode.INVALID_METER)
    unit = _whole(beat_unit, "beatUnit", ErrorCode.INVALID_METER)
    if not BEATS_PER_BAR_MIN <= beats <= BEATS_PER_BAR_MAX:
        raise ValidationError(
            f"beatsPerBar must be between {BEATS_PER_BAR_MIN} and {BEATS_PER_BAR_MAX}",
            ErrorCode.INVALID_METER,
        )
    if unit not in BEAT_UNITS:
        raise ValidationError("beatUnit must be 2, 4, 8 or 16", ErrorCode.INVALID_METER)
    return beats, unit


def position(value: Any) -> float:
    """A song position in milliseconds: finite and >= 0."""
    ms = _number(value, "position", ErrorCode.INVALID_POSITION)
    if ms < 0:
        raise ValidationError("position must be >= 0", ErrorCode.INVALID_POSITION)
    if ms > POSITION_MAX_MS:
        raise ValidationError("position is beyond any song", ErrorCode.INVALID_POSITION)
    return ms


def role(value: Any) -> Role:
    """``'leader'`` or ``'follower'``."""
    if value == "leader":
        return "leader"
    if value == "follower":
        return "follower"
    raise ValidationError("role must be 'leader' or 'follower'", ErrorCode.INVALID_ROLE)


def optional_role(value: Any) -> Role | None:
    return None if value is None else role(value)


def message(value: Any) -> str:
    """The session's message board text: at most 500 characters, newlines allowed."""
    if value is None:
        return ""
    return _text(value, "message", MESSAGE_MAX, ErrorCode.INVALID_MESSAGE, multiline=True)


def count_in_bars(value: Any) -> int:
    """Count-in length in bars: a whole number 0-4."""
    bars = _whole(value, "countInBars", ErrorCode.INVALID_COUNT_IN)
    if not 0 <= bars <= COUNT_IN_MAX_BARS:
        raise ValidationError(
            f"countInBars must be between 0 and {COUNT_IN_MAX_BARS}", ErrorCode.INVALID_COUNT_IN
        )
    return bars


def quantize(value: Any, default: Quantize) -> Quantize:
    """When a change takes effect: ``'now'``, on the next ``'beat'`` or the next ``'bar'``."""
    if value is None:
        return default
    if value == "now":
        return "now"
    if value == "beat":
        return "beat"
    if value == "bar":
        return "bar"
    raise ValidationError("quantize must be 'now', 'beat' or 'bar'")


def leader_key(value: Any) -> str | None:
    """An optional leader key as presented by a client."""
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 128:
        raise ValidationError("leaderKey must be a string of 1-128 characters")
    return value


def title(value: Any) -> str:
    text = _text(value, "title", TITLE_MAX, ErrorCode.INVALID_SONG, multiline=False).strip()
    if not text:
        raise ValidationError("title must not be empty", ErrorCode.INVALID_SONG)
    return text


def chart(value: Any) -> str:
    if value is None:
        return ""
    return _text(value, "chart", CHART_MAX, ErrorCode.INVALID_SONG, multiline=True)


def cue_text(value: Any) -> str:
    """A stage cue's text: trimmed, 1-40 characters, one line of visible text.

    Control characters and line breaks are refused as in every one-line string, and so is
    every invisible formatting character (Unicode ``Cf``: text-direction overrides, zero-width
    spaces and joiners, soft hyphens): a cue shown full width on every phone must read as
    what the console shows, never reversed or with words hidden between its letters.
    """
    if not isinstance(value, str):
        raise ValidationError("text must be a string", ErrorCode.INVALID_CUE)
    too_long = ValidationError(
        f"text must be at most {CUE_TEXT_MAX} characters", ErrorCode.INVALID_CUE
    )
    if len(value) > 10 * CUE_TEXT_MAX:  # refused before a huge one is read char by char
        raise too_long
    for char in value:
        category = unicodedata.category(char)
        if category in ("Cc", "Cs", "Zl", "Zp"):
            raise ValidationError(
                "text must be one line without control characters", ErrorCode.INVALID_CUE
            )
        if category == "Cf":
            raise ValidationError(
                "text must not contain invisible formatting or text-direction characters",
                ErrorCode.INVALID_CUE,
            )
    text = value.strip()
    if not text:
        raise ValidationError("text must not be empty", ErrorCode.INVALID_CUE)
    if len(text) > CUE_TEXT_MAX:
        raise too_long
    return text


def cue_in_bars(value: Any) -> int:
    """How many bars after the next one a cue lands: a whole number 0-8 (default 0)."""
    if value is None:
        return 0
    bars = _whole(value, "inBars", ErrorCode.INVALID_CUE)
    if not 0 <= bars <= CUE_IN_BARS_MAX:
        raise ValidationError(
            f"inBars must be between 0 and {CUE_IN_BARS_MAX}", ErrorCode.INVALID_CUE
        )
    return bars


def cue_hold_bars(value: Any) -> int:
    """How many bars a cue stays on the phones: a whole number 1-16 (default 2)."""
    if value is None:
        return CUE_HOLD_BARS_DEFAULT
    bars = _whole(value, "holdBars", ErrorCode.INVALID_CUE)
    if not CUE_HOLD_BARS_MIN <= bars <= CUE_HOLD_BARS_MAX:
        raise ValidationError(
            f"holdBars must be between {CUE_HOLD_BARS_MIN} and {CUE_HOLD_BARS_MAX}",
            ErrorCode.INVALID_CUE,
        )
    return bars


def flag(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be true or false")
    return value


def short_text(value: Any, field: str, limit: int = 200) -> str | None:
    """Optional free text such as a user agent: truncated, control characters refused."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a string")
    return _text(value[:limit], field, limit, ErrorCode.INVALID_PAYLOAD, multiline=False)
