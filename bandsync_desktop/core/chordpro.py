"""ChordPro charts: the song's facts, its sections and bars, read by the page's own rule.

A chart's text is kept as it is (the page renders ChordPro itself, ``web/chart.js``); this
module reads what the text says about time, so that the console and every phone agree:

- ``map_chart`` gives every line its kind, bars and first bar exactly as the page's
  ``web/chartmap.js`` does (``mapChart``: bar lines ``|``, a repeat ``x2``, chord-only
  lines 1 bar, lyric lines with inline ``[C]`` chords 1 bar, headers, directives and other
  text no time). Its regular expressions are the page's, written for Python: JavaScript's
  ``\\s``, ``trim()``, ``.`` and ``\\d`` mean other characters than Python's, and a JS
  string counts UTF-16 code units, so each line is read as UTF-16 code units here too.
  ``tests/web/test_chart_bars_agree.py`` runs both over the same charts.
- ``parse_chordpro`` reads the facts (``{title}``, ``{subtitle}``, ``{artist}``, ``{key}``,
  ``{capo}``, ``{tempo}``, ``{time}``, ``{duration}``) and cuts the timed lines into
  sections at section markers (``{start_of_*}``/``{end_of_*}``, text headers such as
  ``[Chorus]`` or ``Verse:``, and comments that read as a section's name, ``{c: Chorus}``),
  and wherever ``{tempo: N}``, ``{time: 7/8}`` or ``{x_ramp: N}`` change the time from the
  next bar on: a ``core.song.SongMap``.
- ``export_chordpro`` writes a song back: its chart with ``{title}``, ``{tempo}``, ``{time}``
  (and ``{x_count_in}``) set to the song's, so import → export → import is a fixed point.
- ``decode_chordpro`` turns a file's bytes into text: UTF-8 (with or without a BOM) or
  UTF-16/32 with a BOM, anything else a clear error.

docs/songs.md has the directive table and every rule with an example.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from . import validation
from .errors import ErrorCode, ValidationError
from .song import SECTION_BARS_MAX, SECTION_NAME_MAX, SECTIONS_MAX, Section, SongMap

LineKind = Literal["blank", "header", "bars", "chords", "inline", "text"]

#: The page's cap on a repeat count (chartmap.js MAX_REPEAT).
MAX_REPEAT: Final = 16
#: A file is refused unread past this many bytes: the chart it holds could not be longer
#: than ``validation.CHART_MAX`` characters (at most 4 bytes each, in any encoding read here).
MAX_FILE_BYTES: Final = 4 * validation.CHART_MAX
DEFAULT_TEMPO: Final = 120.0
DEFAULT_METER: Final = (4, 4)

# -- the page's rule, in Python --------------------------------------------------------------

#: JavaScript's white space (``\s`` and ``trim()``): Python's ``str.strip()`` and ``\s`` keep
#: U+FEFF and strip U+001C-U+001F and U+0085, which JS does not.
_JS_SPACE: Final = (
    "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)
_S: Final = "[" + re.escape(_JS_SPACE) + "]"
_ACCIDENTAL: Final = "(?:#|b|♯|♭)"
_CHORD_RE: Final = re.compile(
    "(?:"
    f"[A-G]{_ACCIDENTAL}?"
    "(?:maj|min|mi|m|M|dim|aug|sus|add|°|ø|\\+|-|Δ)?"
    "(?:[0-9]{1,2})?"
    "(?:(?:maj|sus|add|no|omit|[#b+\\-♯♭])[0-9]{1,2}|\\([^)]{1,12}\\))*"
    f"(?:/[A-G]{_ACCIDENTAL}?)?"
    "|N\\.?C\\.?|%|\\.|/|-|\\(?[x×][0-9]{1,2}\\)?"
    ")"
)
_CHORD_START_RE: Final = re.compile("[A-G]|N\\.?C")
_REPEAT_RE: Final = re.compile(f"\\(?[xX×]{_S}*([0-9]{{1,3}})\\)?")
_DIRECTIVE_RE: Final = re.compile(
    f"\\{{{_S}*([A-Za-z_][A-Za-z0-9_-]{{0,39}}){_S}*(?:[:{re.escape(_JS_SPACE)}]{_S}*(.*?))?"
    f"{_S}*\\}}",
    re.DOTALL,
)
_INLINE_RE: Final = re.compile("\\[([^\\[\\]]{1,24})\\]")
_BRACKET_HEADER_RE: Final = re.compile("\\[[^\\]]*\\]", re.DOTALL)
# JS ``.`` matches anything but its line terminators
_BRACE_HEADER_RE: Final = re.compile("\\{[^\\n\\r\\u2028\\u2029]*\\}")
_EDGE_COLONS_RE: Final = re.compile("^:+|:+$")
_SPLIT_SPACE_RE: Final = re.compile(f"{_S}+")

#: ChordPro's short directive names (chartmap.js DIRECTIVE_ALIASES).
DIRECTIVE_ALIASES: Final = {
    "t": "title",
    "st": "subtitle",
    "c": "comment",
    "ci": "comment_italic",
    "cb": "comment_box",
    "soc": "start_of_chorus",
    "eoc": "end_of_chorus",
    "sov": "start_of_verse",
    "eov": "end_of_verse",
    "sob": "start_of_bridge",
    "eob": "end_of_bridge",
    "sot": "start_of_tab",
    "eot": "end_of_tab",
    "a": "artist",
}


def _js_trim(text: str) -> str:
    return text.strip(_JS_SPACE)


def _utf16(text: str) -> str:
    """``text`` as JavaScript sees it: a character beyond U+FFFF is two code units (a
    surrogate pair), so the page's ``{1,24}`` counts it twice."""
    if all(char < "\U00010000" for char in text):
        return text
    units = []
    for char in text:
        code = ord(char)
        if code > 0xFFFF:
            code -= 0x10000
            units.append(chr(0xD800 | (code >> 10)) + chr(0xDC00 | (code & 0x3FF)))
        else:
            units.append(char)
    return "".join(units)


def _from_utf16(text: str) -> str:
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le")


@dataclass(frozen=True, slots=True)
class Directive:
    """A ChordPro directive line ``{name: value}``: the name lower case, ``-`` as ``_``,
    short names spelled out (``{soc}`` is ``start_of_chorus``); the value trimmed."""

    name: str
    value: str


def parse_directive(line: str) -> Directive | None:
    """The directive on ``line`` (chartmap.js ``parseDirective``), or ``None``."""
    match = _DIRECTIVE_RE.fullmatch(_js_trim(_utf16(line)))
    if match is None:
        return None
    raw = match.group(1).lower().replace("-", "_")
    value = _from_utf16(_js_trim(match.group(2) or ""))
    return Directive(DIRECTIVE_ALIASES.get(raw, raw), value)


def _is_chord_symbol(text: str) -> bool:
    return _CHORD_RE.fullmatch(text) is not None and _CHORD_START_RE.match(text) is not None


def _has_inline_chord(text: str) -> bool:
    """Whether chartmap.js ``parseInline`` finds a chord (it returns non-null)."""
    return any(_is_chord_symbol(_js_trim(m.group(1))) for m in _INLINE_RE.finditer(text))


def _is_header(text: str) -> bool:
    return (
        _BRACKET_HEADER_RE.fullmatch(text) is not None
        or _BRACE_HEADER_RE.fullmatch(text) is not None
        or (text.endswith(":") and "|" not in text)
    )


def _bars_of_bar_line(text: str) -> int:
    if "|" not in text:
        return 0
    cells = [_js_trim(_EDGE_COLONS_RE.sub("", cell)) for cell in text.split("|")]
    while cells and cells[-1] == "":
        cells.pop()
    repeat = 1
    last = _REPEAT_RE.fullmatch(cells[-1]) if cells else None
    if last is not None:
        repeat = max(1, min(MAX_REPEAT, int(last.group(1))))
        cells.pop()
    bars = sum(1 for cell in cells if cell != "")
    return max(1, bars) * repeat


def _is_chord_line(text: str) -> bool:
    tokens = [token for token in _SPLIT_SPACE_RE.split(text) if token]
    return (
        bool(tokens)
        and all(_CHORD_RE.fullmatch(token) is not None for token in tokens)
        and any(_CHORD_START_RE.match(token) is not None for token in tokens)
    )


def _is_bracket_chord_line(text: str) -> bool:
    def blank_chord(match: re.Match[str]) -> str:
        return " " if _is_chord_symbol(_js_trim(match.group(1))) else match.group(0)

    rest = _INLINE_RE.sub(blank_chord, text)
    return rest != text and _js_trim(rest) == ""


def classify_line(line: str) -> tuple[LineKind, int]:
    """One chart line's kind and bars (chartmap.js ``classifyLine``).

    Only ``'bars'``, ``'chords'`` and ``'inline'`` lines take time.
    """
    text = _js_trim(_utf16(line))
    if not text:
        return "blank", 0
    if _is_bracket_chord_line(text):
        return "chords", _bars_of_bar_line(text) or 1
    if _is_header(text):
        return "header", 0
    if _has_inline_chord(text):
        return "inline", _bars_of_bar_line(text) or 1
    bars = _bars_of_bar_line(text)
    if bars > 0:
        return "bars", bars
    if _is_chord_line(text):
        return "chords", 1
    return "text", 0


@dataclass(frozen=True, slots=True)
class ChartLine:
    """One line of a chart map: its kind, bars, first bar (0-based) and owner (the timed
    line it belongs to, -1 in a chart with none): chartmap.js's fields."""

    kind: LineKind
    bars: int
    start_bar: int
    owner: int


@dataclass(frozen=True, slots=True)
class ChartMap:
    """A chart's lines with their bars (chartmap.js ``mapChart``)."""

    lines: tuple[ChartLine, ...]
    timed: tuple[int, ...]
    total_bars: int


def map_chart(chart: str | Sequence[str]) -> ChartMap:
    """Which line plays at which bar, by the page's rule: a string is split at ``\\n``.

    A chart with no timed line gives every text line 1 bar, so a lyric sheet still moves.
    """
    source = chart.split("\n") if isinstance(chart, str) else list(chart)
    classified = [classify_line(line) for line in source]
    if not any(bars > 0 for _, bars in classified):
        classified = [(kind, 1 if kind == "text" else bars) for kind, bars in classified]
    timed = [index for index, (_, bars) in enumerate(classified) if bars > 0]
    owner = timed[0] if timed else -1
    lines = []
    bar = 0
    for index, (kind, bars) in enumerate(classified):
        if bars > 0:
            owner = index
        lines.append(ChartLine(kind, bars, bar, owner))
        bar += bars
    return ChartMap(tuple(lines), tuple(timed), bar)


# -- reading a file ---------------------------------------------------------------------------

_BOMS: Final = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def decode_chordpro(data: bytes) -> str:
    """A ChordPro file's text: UTF-8 (a BOM allowed), or UTF-16/UTF-32 with a BOM.

    Raises:
        ValidationError: ``PAYLOAD_TOO_LARGE`` past ``MAX_FILE_BYTES``; ``INVALID_SONG``
            for bytes that are not text in those encodings (where and what to do).
    """
    if len(data) > MAX_FILE_BYTES:
        raise ValidationError(
            f"the file is {len(data)} bytes; a chart is at most {validation.CHART_MAX} characters",
            ErrorCode.PAYLOAD_TOO_LARGE,
        )
    encoding = "utf-8"
    for bom, name in _BOMS:
        if data.startswith(bom):
            data, encoding = data[len(bom) :], name
            break
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValidationError(
            f"line {line} is not {encoding.upper()} text (byte 0x{data[exc.start]:02X}): "
            "save the file as UTF-8",
            ErrorCode.INVALID_SONG,
        ) from exc


def normalize_chart(text: str) -> str:
    """The chart as kept: a BOM dropped, line ends as ``\\n``, trailing blank lines off.

    Raises:
        ValidationError: a control character (other than tab) or a chart longer than
            ``validation.CHART_MAX``, naming the line.
    """
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\n")
    for number, line in enumerate(text.split("\n"), start=1):
        for char in line:
            if char != "\t" and unicodedata.category(char) in ("Cc", "Cs"):
                raise ValidationError(
                    f"line {number} holds a control character (U+{ord(char):04X})",
                    ErrorCode.INVALID_SONG,
                )
    if len(text) > validation.CHART_MAX:
        raise ValidationError(
            f"the chart is {len(text)} characters; at most {validation.CHART_MAX}",
            ErrorCode.PAYLOAD_TOO_LARGE,
        )
    return text


# -- facts and sections -----------------------------------------------------------------------

_NUMBER_RE: Final = re.compile(r"([0-9]{1,3}(?:\.[0-9]+)?)\s*(?:bpm)?", re.IGNORECASE | re.ASCII)
_TIME_RE: Final = re.compile(r"([0-9]{1,2})\s*/\s*([0-9]{1,2})", re.ASCII)
_COMMON_TIME: Final = {"c": (4, 4), "c|": (2, 2), "¢": (2, 2)}
_LABEL_WORDS: Final = (
    "intro|verse|pre-?chorus|pre chorus|chorus|post-?chorus|refrain|bridge|middle 8|solo|"
    "instrumental|interlude|break|breakdown|outro|ending|coda|tag|vamp|turnaround|hook|riff|"
    "reprise|ad lib|fill|channel"
)
#: A comment that names a section: a section word, a number or letter, a short note.
_LABEL_RE: Final = re.compile(
    rf"(?:{_LABEL_WORDS})(?:\s*(?:[0-9]{{1,2}}|[IVX]{{1,4}}|[A-Z]))?"
    r"(?:\s*\([^()]{0,20}\))?(?:\s*[x×][0-9]{1,2})?\s*:?",
    re.IGNORECASE,
)
_LABEL_ATTR_RE: Final = re.compile(r'label\s*=\s*"([^"]*)"')
_COMMENTS: Final = frozenset({"comment", "comment_italic", "comment_box"})
_FACTS: Final = ("title", "subtitle", "artist", "key", "capo", "duration")


def _tempo_value(value: str, line: int, directive: str) -> float:
    match = _NUMBER_RE.fullmatch(value.strip())
    if match is None:
        raise ValidationError(
            f"line {line}: {{{directive}: {value}}} is not a tempo in BPM", ErrorCode.INVALID_TEMPO
        )
    try:
        return validation.tempo(float(match.group(1)))
    except ValidationError as exc:
        raise ValidationError(f"line {line}: {exc.message}", exc.code) from exc


def _time_value(value: str, line: int) -> tuple[int, int]:
    text = value.strip()
    if text.casefold() in _COMMON_TIME:
        return _COMMON_TIME[text.casefold()]
    match = _TIME_RE.fullmatch(text)
    if match is None:
        raise ValidationError(
            f"line {line}: {{time: {value}}} is not a meter such as 4/4 or 7/8",
            ErrorCode.INVALID_METER,
        )
    try:
        return validation.meter(int(match.group(1)), int(match.group(2)))
    except ValidationError as exc:
        raise ValidationError(f"line {line}: {exc.message}", exc.code) from exc


def _count_in_value(value: str, line: int) -> int:
    text = value.strip()
    try:
        return validation.count_in_bars(int(text) if text.isascii() and text.isdigit() else text)
    except ValidationError as exc:
        raise ValidationError(f"line {line}: {exc.message}", exc.code) from exc


def _name(text: str) -> str:
    """A label as a section name: one line of at most ``SECTION_NAME_MAX`` characters,
    without invisible formatting characters (``section_name`` refuses them)."""
    visible = "".join(char for char in text if unicodedata.category(char) != "Cf")
    name = " ".join(visible.split())
    if len(name) > SECTION_NAME_MAX:
        name = name[: SECTION_NAME_MAX - 1].rstrip() + "…"
    return name


def _directive_label(directive: Directive) -> str | None:
    """The section name a directive gives, or ``None`` when it names no section."""
    if directive.name.startswith("start_of_"):
        value = directive.value
        attribute = _LABEL_ATTR_RE.search(value)
        if attribute is not None:
            value = attribute.group(1)
        if value.strip():
            return _name(value)
        kind = directive.name[len("start_of_") :].replace("_", " ").strip()
        return _name(kind.capitalize()) if kind else "Part"
    if directive.name in _COMMENTS and _LABEL_RE.fullmatch(directive.value.strip()):
        return _name(directive.value.strip().rstrip(":").strip())
    return None


def _header_label(text: str) -> str | None:
    """``[Chorus]`` → "Chorus", ``Verse 2:`` → "Verse 2"; ``None`` for an empty one."""
    label = text.strip()
    if label.startswith("[") and label.endswith("]"):
        label = label[1:-1]
    label = label.strip().rstrip(":").strip()
    return _name(label) if label else None


@dataclass(frozen=True, slots=True)
class ChordProSong:
    """What a ChordPro chart says.

    Attributes:
        chart: the chart's text as kept (``normalize_chart``): what the phones render.
        title, subtitle, artist, key, capo, duration: the first non-empty value of each
            directive (as the page shows them), else ``None``.
        tempo_bpm: the tempo of the song's first bar from ``{tempo}`` (``None``: none given).
        meter: ``(beats_per_bar, beat_unit)`` of the first bar from ``{time}``, or ``None``.
        count_in_bars: from ``{x_count_in: N}``, or ``None``.
        song_map: the sections and their bars, ``None`` for a chart with no timed line.
        chart_map: every line's bars, as the page maps them.
        section_lines: the index of each section's first timed line.
        unknown: directives read but not understood, kept in the chart and ignored.
    """

    chart: str
    title: str | None
    subtitle: str | None
    artist: str | None
    key: str | None
    capo: str | None
    duration: str | None
    tempo_bpm: float | None
    meter: tuple[int, int] | None
    count_in_bars: int | None
    song_map: SongMap | None
    chart_map: ChartMap
    section_lines: tuple[int, ...]
    unknown: tuple[str, ...]

    @property
    def duration_s(self) -> float | None:
        """``{duration}`` in seconds (``225``, ``3:45``, ``1:02:03``), if it reads as one."""
        if self.duration is None:
            return None
        parts = self.duration.strip().split(":")
        if not 1 <= len(parts) <= 3 or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        seconds = 0.0
        for part in parts:
            seconds = seconds * 60 + int(part)
        return seconds


@dataclass(slots=True)
class _Stretch:
    """A section being read: its name (``None``: no label in force), time and bars."""

    name: str | None
    tempo_bpm: float
    meter: tuple[int, int]
    ramp_to_bpm: float | None
    first_line: int
    bars: int = 0


#: Known directives that change nothing in the song's time or facts.
_KNOWN: Final = frozenset(
    {
        "comment",
        "comment_italic",
        "comment_box",
        "highlight",
        "chorus",
        "new_page",
        "np",
        "new_physical_page",
        "npp",
        "column_break",
        "colb",
        "columns",
        "col",
        "sorttitle",
        "album",
        "year",
        "copyright",
        "lyricist",
        "composer",
        "arranger",
        "meta",
        "define",
        "chord",
        "transpose",
    }
)


def parse_chordpro(
    text: str,
    *,
    default_tempo_bpm: float = DEFAULT_TEMPO,
    default_meter: tuple[int, int] = DEFAULT_METER,
) -> ChordProSong:
    """Read a ChordPro chart: its facts, its sections and bars.

    The bars are the page's (``map_chart``). A section starts at every section marker
    (``{start_of_*}``, a text header, a comment naming a section) and ends at
    ``{end_of_*}`` or the next marker; ``{tempo}``, ``{time}`` and ``{x_ramp}`` take effect
    from the next timed line, and a section that has bars already continues as a new
    section of the same name there. A ramp runs to the end of its section, whose tempo then
    goes on. Sections with no bars are no sections. Unlabelled bars are called "Intro"
    before the first labelled section, "Outro" after the last, "Interlude" between, and
    "Song" in a chart with no label at all.

    Args:
        text: the chart (any line ends; a BOM is dropped).
        default_tempo_bpm: the tempo before any ``{tempo}``.
        default_meter: the meter before any ``{time}``.

    Raises:
        ValidationError: a bad ``{tempo}``/``{time}``/``{x_ramp}``/``{x_count_in}``, a
            control character, a chart too long, more than 200 sections or a section of
            more than 999 bars; the message names the line.
    """
    chart = normalize_chart(text)
    lines = chart.split("\n")
    chart_map = map_chart(lines)
    facts: dict[str, str] = {}
    unknown: list[str] = []
    tempo = validation.tempo(default_tempo_bpm)
    meter = validation.meter(*default_meter)
    first_tempo: float | None = None
    first_meter: tuple[int, int] | None = None
    count_in: int | None = None
    ramp: float | None = None
    label: str | None = None
    changed = False  # a tempo/meter/ramp change waits for the next bar
    stretches: list[_Stretch] = []
    current: _Stretch | None = None
    started = False  # a timed line has been read

    for index, line in enumerate(lines):
        number = index + 1
        info = chart_map.lines[index]
        if info.kind == "header":
            directive = parse_directive(line)
            if directive is None:
                new_label = _header_label(line)
            else:
                name, value = directive.name, directive.value
                if name in _FACTS:
                    if value and name not in facts:
                        facts[name] = value
                elif name == "tempo":
                    tempo = _tempo_value(value, number, name)
                    changed = True
                    if not started:
                        first_tempo = tempo
                elif name == "time":
                    meter = _time_value(value, number)
                    changed = True
                    if not started:
                        first_meter = meter
                elif name == "x_ramp":
                    ramp = _tempo_value(value, number, name)
                    changed = True
                elif name == "x_count_in":
                    if count_in is None:
                        count_in = _count_in_value(value, number)
                elif name.startswith("end_of_"):
                    label, current = None, None
                    continue
                elif (
                    name not in _KNOWN
                    and not name.startswith("start_of_")
                    and (name not in unknown)
                ):
                    unknown.append(name)
                new_label = _directive_label(directive)
            if new_label is not None:
                label, current = new_label, None  # the next bar starts it
            continue
        if info.bars == 0:
            continue
        started = True
        if current is None or changed:
            # A new section, or the current one going on in a new tempo or meter.
            current = _Stretch(
                label if current is None else current.name, tempo, meter, ramp, index
            )
            stretches.append(current)
            if ramp is not None:
                tempo = ramp  # a ramp's end tempo goes on after its section
            ramp, changed = None, False
        current.bars += info.bars
        if current.bars > SECTION_BARS_MAX:
            raise ValidationError(
                f"line {number}: the section {_display(current)} passes "
                f"{SECTION_BARS_MAX} bars; mark its parts ({{start_of_verse}}, [Chorus] ...)",
                ErrorCode.INVALID_SONG,
            )

    if len(stretches) > SECTIONS_MAX:
        raise ValidationError(
            f"the chart has {len(stretches)} sections; a song has at most {SECTIONS_MAX}",
            ErrorCode.INVALID_SONG,
        )
    names = _section_names(stretches)
    song_map = None
    if stretches:
        song_map = SongMap(
            Section(
                name,
                stretch.bars,
                stretch.tempo_bpm,
                stretch.meter[0],
                stretch.meter[1],
                stretch.ramp_to_bpm,
            )
            for name, stretch in zip(names, stretches, strict=True)
        )
    return ChordProSong(
        chart=chart,
        title=facts.get("title"),
        subtitle=facts.get("subtitle"),
        artist=facts.get("artist"),
        key=facts.get("key"),
        capo=facts.get("capo"),
        duration=facts.get("duration"),
        tempo_bpm=first_tempo,
        meter=first_meter,
        count_in_bars=count_in,
        song_map=song_map,
        chart_map=chart_map,
        section_lines=tuple(stretch.first_line for stretch in stretches),
        unknown=tuple(unknown),
    )


def _display(stretch: _Stretch) -> str:
    return repr(stretch.name) if stretch.name else f"from line {stretch.first_line + 1}"


def _section_names(stretches: Sequence[_Stretch]) -> list[str]:
    """Names for the stretches; unlabelled ones are named by where they are."""
    labelled = [i for i, stretch in enumerate(stretches) if stretch.name is not None]
    names = []
    for index, stretch in enumerate(stretches):
        if stretch.name is not None:
            names.append(stretch.name)
        elif not labelled:
            names.append("Song")
        elif index < labelled[0]:
            names.append("Intro")
        elif index > labelled[-1]:
            names.append("Outro")
        else:
            names.append("Interlude")
    return names


# -- writing ---------------------------------------------------------------------------------


def format_tempo(tempo_bpm: float) -> str:
    """A tempo as ``{tempo}`` writes it: ``96``, ``96.5``; read back to the same float."""
    return str(int(tempo_bpm)) if float(tempo_bpm).is_integer() else repr(float(tempo_bpm))


def export_chordpro(
    chart: str,
    *,
    title: str,
    tempo_bpm: float,
    beats_per_bar: int,
    beat_unit: int,
    count_in_bars: int | None = None,
) -> str:
    """A song as a ChordPro file's text: its chart, with its facts as directives.

    The first ``{title}`` with a value gets ``title``; every ``{tempo}`` and ``{time}``
    before the first timed line (the ones that set the first bar) gets ``tempo_bpm`` and
    the meter; a missing one is added at the top, after the title. ``{x_count_in}`` is
    written when ``count_in_bars`` is given and not the default 1 (or the chart has one).
    A line whose value is already right stays as it was, so a file read and written back
    unchanged is the same text. Mid-song ``{tempo}``/``{time}``/``{x_ramp}`` stay.
    """
    text = chart.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    text = text.rstrip("\n")
    lines = text.split("\n") if text else []
    chart_map = map_chart(lines)
    head = chart_map.timed[0] if chart_map.timed else len(lines)
    meter_text = f"{beats_per_bar}/{beat_unit}"
    wanted = {
        "title": title,
        "tempo": format_tempo(tempo_bpm),
        "time": meter_text,
    }
    if count_in_bars is not None:
        wanted["x_count_in"] = str(count_in_bars)
    found: dict[str, bool] = dict.fromkeys(wanted, False)
    out = list(lines)
    title_line = -1
    for index, line in enumerate(lines):
        if chart_map.lines[index].kind != "header":
            continue
        directive = parse_directive(line)
        if directive is None:
            continue
        name = directive.name
        if name == "title" and directive.value and not found["title"]:
            found["title"] = True
            title_line = index
            if directive.value != title:
                out[index] = f"{{title: {title}}}"
        elif name in ("tempo", "time", "x_count_in") and name in wanted and index < head:
            found[name] = True
            if not _same_value(name, directive.value, wanted[name]):
                out[index] = f"{{{name}: {wanted[name]}}}"
    added = []
    if not found["title"]:
        added.append(f"{{title: {title}}}")
    for name in ("tempo", "time", "x_count_in"):
        if name in wanted and not found[name]:
            if name == "x_count_in" and count_in_bars == 1:
                continue
            added.append(f"{{{name}: {wanted[name]}}}")
    # after the title if it is at the top, else first: they must come before the first bar
    at = title_line + 1 if 0 <= title_line < head else 0
    out[at:at] = added
    return "\n".join(out) + "\n"


def _same_value(name: str, value: str, wanted: str) -> bool:
    """Whether a directive already says what the song has (``96`` and ``96.0`` do)."""
    try:
        if name == "tempo":
            return _tempo_value(value, 0, name) == float(wanted)
        if name == "time":
            return _time_value(value, 0) == tuple(int(p) for p in wanted.split("/"))
        return _count_in_value(value, 0) == int(wanted)
    except ValidationError:
        return False


__all__ = [
    "DIRECTIVE_ALIASES",
    "MAX_FILE_BYTES",
    "MAX_REPEAT",
    "ChartLine",
    "ChartMap",
    "ChordProSong",
    "Directive",
    "classify_line",
    "decode_chordpro",
    "export_chordpro",
    "format_tempo",
    "map_chart",
    "normalize_chart",
    "parse_chordpro",
    "parse_directive",
]
