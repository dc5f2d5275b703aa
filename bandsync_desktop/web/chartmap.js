/*
 * BandSync follower page: which chart line is playing at which bar. Pure: no DOM, no timers,
 * so the same file runs in the page and under node for tests/web/test_chart_map.py.
 *
 * Until a song model carries the form, a chart's own text says how long each line lasts, the
 * same way on every phone (no per-player "bars per line"):
 *   - a line with bar lines `|` lasts as many bars as it has non-empty cells between them
 *     (`|: G | C :|` is 2 bars; a last cell `x2` repeats the line: `| G | C | x2` is 4 bars);
 *   - a line of chord symbols only (`G  C/B  Am7`) lasts 1 bar;
 *   - a ChordPro lyric line with inline chords (`[C]Some [G]words`) is a chord line over its
 *     lyrics: 1 bar, or as many as its bar lines say (`| [C]Some | [G]words |` is 2 bars);
 *     a line of bracketed chords only (`[C] [G]`) is a chord line too;
 *   - headers (`Verse:`, `[Chorus]`), ChordPro directives (`{title: ...}`, `{soc}`,
 *     `{comment: ...}`, any `{...}`), blank lines and every other text line (lyrics under a
 *     chord line, notes) take no time: they belong to the chord line above (text before the
 *     first chord line belongs to the first one);
 *   - a chart with no chord line at all gives every text line 1 bar, so a plain lyric sheet
 *     still moves.
 * Bars are counted from 0 at the song's start (bar:beat 1:1).
 *
 * `parseDirective` and `parseInline` are the ChordPro reading chart.js renders from.
 */
(function (root, factory) {
  'use strict';
  const api = factory();
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.BandSyncChart = api;
  }
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /** A repeat count caps here: a typo like `x200` must not stall the chart for minutes. */
  const MAX_REPEAT = 16;
  const CHORD_RE = new RegExp(
    '^(?:' +
      // root, accidental, quality/extensions, alterations, slash bass
      '[A-G](?:#|b|♯|♭)?' +
      '(?:maj|min|mi|m|M|dim|aug|sus|add|°|ø|\\+|-|Δ)?' +
      '(?:\\d{1,2})?' +
      '(?:(?:maj|sus|add|no|omit|[#b+\\-♯♭])\\d{1,2}|\\([^)]{1,12}\\))*' +
      '(?:/[A-G](?:#|b|♯|♭)?)?' +
      // rhythm and repeat marks that share a chord line
      '|N\\.?C\\.?|%|\\.|/|-|\\(?[x×]\\d{1,2}\\)?' +
    ')$',
  );
  const REPEAT_RE = /^\(?[x×]\s*(\d{1,3})\)?$/i;

  /** ChordPro's short directive names, by their long ones' names. */
  const DIRECTIVE_ALIASES = Object.freeze({
    t: 'title', st: 'subtitle', c: 'comment', ci: 'comment_italic', cb: 'comment_box',
    soc: 'start_of_chorus', eoc: 'end_of_chorus', sov: 'start_of_verse', eov: 'end_of_verse',
    sob: 'start_of_bridge', eob: 'end_of_bridge', sot: 'start_of_tab', eot: 'end_of_tab',
    a: 'artist',
  });
  const DIRECTIVE_RE = /^\{\s*([A-Za-z_][\w-]{0,39})\s*(?:[:\s]\s*([^]*?))?\s*\}$/;
  // an inline chord: `[C]`, `[F#m7/C#]`, `[N.C.]`; the bracket's text must read as a chord
  const INLINE_RE = /\[([^\[\]]{1,24})\]/g;

  /**
   * A ChordPro directive line `{name: value}` (or `{name value}`, `{name}`) as
   * `{name, value}`, the name lower case with aliases spelled out (`{t: X}` → title,
   * `{soc}` → start_of_chorus); null when `line` is not one.
   */
  function parseDirective(line) {
    const match = DIRECTIVE_RE.exec(String(line).trim());
    if (!match) {
      return null;
    }
    const raw = match[1].toLowerCase().replace(/-/g, '_');
    return { name: DIRECTIVE_ALIASES[raw] || raw, value: (match[2] || '').trim() };
  }

  function isChordSymbol(text) {
    return CHORD_RE.test(text) && /^[A-G]|^N\.?C/.test(text);
  }

  /**
   * A line with ChordPro inline chords as segments `[{chord, text}]`: each chord with the
   * lyric text that follows it up to the next chord (the first segment's chord is '' when the
   * line starts with lyrics). Null when the line has no inline chord (`[Chorus]` is no chord).
   */
  function parseInline(line) {
    const text = String(line);
    const segments = [];
    let last = 0;
    let chord = '';
    let found = false;
    INLINE_RE.lastIndex = 0;
    let match;
    while ((match = INLINE_RE.exec(text)) !== null) {
      const symbol = match[1].trim();
      if (!isChordSymbol(symbol)) {
        continue; // not a chord: stays in the lyric as typed
      }
      if (match.index > last || chord || segments.length) {
        segments.push({ chord, text: text.slice(last, match.index) });
      }
      chord = symbol;
      last = match.index + match[0].length;
      found = true;
    }
    if (!found) {
      return null;
    }
    segments.push({ chord, text: text.slice(last) });
    return segments.filter((s, i) => i > 0 || s.chord || s.text);
  }

  /** Header lines name a part and take no time: `Verse:`, `[Chorus]`, `{title: X}`. */
  function isHeader(text) {
    return /^\[[^\]]*\]$/.test(text) || /^\{.*\}$/.test(text) || (/:$/.test(text) && !text.includes('|'));
  }

  /** Bars of a line with bar lines, or 0 when `text` has none. */
  function barsOfBarLine(text) {
    if (!text.includes('|')) {
      return 0;
    }
    const cells = text.split('|').map((cell) => cell.replace(/^:+|:+$/g, '').trim());
    while (cells.length && cells[cells.length - 1] === '') {
      cells.pop();
    }
    let repeat = 1;
    const last = cells.length ? REPEAT_RE.exec(cells[cells.length - 1]) : null;
    if (last) {
      repeat = Math.max(1, Math.min(MAX_REPEAT, Number(last[1])));
      cells.pop();
    }
    const bars = cells.filter((cell) => cell !== '').length;
    return Math.max(1, bars) * repeat;
  }

  function isChordLine(text) {
    const tokens = text.split(/\s+/).filter(Boolean);
    return tokens.length > 0 && tokens.every((token) => CHORD_RE.test(token)) &&
      tokens.some((token) => /^[A-G]|^N\.?C/.test(token));
  }

  /** `[C] [G]` or `[C]`: bracketed chords and nothing else. */
  function isBracketChordLine(text) {
    const rest = text.replace(INLINE_RE, (all, symbol) => (isChordSymbol(symbol.trim()) ? ' ' : all));
    return rest !== text && rest.trim() === '';
  }

  /**
   * One chart line: `{kind, bars}` with kind 'blank' | 'header' | 'bars' | 'chords' |
   * 'inline' | 'text'. Only 'bars', 'chords' and 'inline' (lyrics with ChordPro `[C]`
   * chords) lines take time.
   */
  function classifyLine(line) {
    const text = String(line).trim();
    if (!text) {
      return { kind: 'blank', bars: 0 };
    }
    if (isBracketChordLine(text)) {
      return { kind: 'chords', bars: barsOfBarLine(text) || 1 };
    }
    if (isHeader(text)) {
      return { kind: 'header', bars: 0 };
    }
    if (parseInline(text)) {
      return { kind: 'inline', bars: barsOfBarLine(text) || 1 };
    }
    const bars = barsOfBarLine(text);
    if (bars > 0) {
      return { kind: 'bars', bars };
    }
    if (isChordLine(text)) {
      return { kind: 'chords', bars: 1 };
    }
    return { kind: 'text', bars: 0 };
  }

  /**
   * The map of a chart (an array of lines or one string): every line with its kind, bars,
   * first bar and `owner` (the index of the timed line it belongs to, or -1 for an empty
   * chart), plus the timed lines in order and the total bars.
   */
  function mapChart(chart) {
    const lines = (Array.isArray(chart) ? chart : String(chart).split('\n')).map(classifyLine);
    if (!lines.some((l) => l.bars > 0)) {
      for (const line of lines) {
        if (line.kind === 'text') {
          line.bars = 1;
        }
      }
    }
    const timed = [];
    let bar = 0;
    lines.forEach((line, index) => {
      line.startBar = bar;
      if (line.bars > 0) {
        timed.push(index);
        bar += line.bars;
      }
    });
    let owner = timed.length ? timed[0] : -1;
    for (let i = 0; i < lines.length; i += 1) {
      if (lines[i].bars > 0) {
        owner = i;
      }
      lines[i].owner = owner;
    }
    return Object.freeze({ lines, timed, totalBars: bar });
  }

  /**
   * The timed line playing at `bar` (0-based, fractional: 1:1 is 0, 3:3 in 4/4 is 2.5):
   * `{index, fraction}` with fraction in [0, 1) of the way through that line's bars. Before
   * the start it is the first timed line, after the end the last; null when nothing is timed.
   */
  function lineAtBar(map, bar) {
    const timed = map.timed;
    if (!timed.length) {
      return null;
    }
    const at = Number.isFinite(bar) ? Math.max(0, bar) : 0;
    let lo = 0;
    let hi = timed.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (map.lines[timed[mid]].startBar <= at) {
        lo = mid;
      } else {
        hi = mid - 1;
      }
    }
    const line = map.lines[timed[lo]];
    const fraction = (at - line.startBar) / line.bars;
    return { index: timed[lo], fraction: Math.max(0, Math.min(fraction, 1 - 1e-9)) };
  }

  /** Bar:beat as a 0-based fractional bar: `{bar: 3, beat: 3, fraction: 0.5}` in 4/4 → 2.625. */
  function barPosition(barBeat, beatsPerBar) {
    return barBeat.bar - 1 + (barBeat.beat - 1 + barBeat.fraction) / beatsPerBar;
  }

  return Object.freeze({
    classifyLine, mapChart, lineAtBar, barPosition, parseDirective, parseInline, MAX_REPEAT,
  });
});
