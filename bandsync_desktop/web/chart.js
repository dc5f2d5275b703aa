/*
 * Chart: the song's lines on screen, ChordPro rendered (inline chords over their syllables,
 * the song's facts in one header line, comments as notes, the chorus marked, unknown
 * directives hidden), the reader's font size, and the current line (chartmap.js says which)
 * kept in the chart box's visible part.
 */

import { el, setText } from './dom.js';
import { load, save, STORE } from './settings.js';
import { chartMath, state } from './state.js';

/** Chart text sizes in CSS px, A− / A+ step through them; the default reads from a music stand. */
export const CHART_SIZES = Object.freeze([16, 19, 22, 26, 30, 35, 40]);

export const CHART_SIZE_DEFAULT = 22;

/**
 * The song facts the header line shows, in its order, and how each reads. Not the chart's
 * {tempo} or {time}: the page shows the band's live tempo and meter above, and a figure written
 * in the chart contradicts them as soon as the leader plays it at another tempo.
 */
const FACTS = [
  ['title', (v) => v],
  ['subtitle', (v) => v],
  ['artist', (v) => v],
  ['key', (v) => 'Key ' + v],
  ['capo', (v) => 'Capo ' + v],
];

const NOTES = new Set(['comment', 'comment_italic', 'comment_box', 'highlight']);

const SECTION_LABELS = {
  start_of_chorus: 'Chorus', start_of_verse: 'Verse', start_of_bridge: 'Bridge',
  start_of_tab: 'Tab',
};

/** The stored size, snapped to one of CHART_SIZES. */
export function storedChartSize() {
  const px = Number(load(STORE.chartSize, String(CHART_SIZE_DEFAULT)));
  return CHART_SIZES.includes(px) ? px : CHART_SIZE_DEFAULT;
}

/** Sets the reader's chart text size (kept per device) and shows the largest that fits. */
export function setChartSize(px) {
  const size = CHART_SIZES.includes(px) ? px : CHART_SIZE_DEFAULT;
  state.chartSize = size;
  save(STORE.chartSize, size);
  fitChartSize();
}

export function stepChartSize(step) {
  const i = CHART_SIZES.indexOf(state.chartShownSize);
  const next = Math.max(0, Math.min(CHART_SIZES.length - 1, (i < 0 ? 2 : i) + step));
  setChartSize(CHART_SIZES[next]);
}

/** Whether every timed line fits the chart box's height (so the current one can be in view). */
function timedLinesFit() {
  const map = state.chartMap;
  if (!map || el.chartBox.hidden) {
    return true;
  }
  const room = el.chart.clientHeight;
  return map.timed.every((i) => state.chartLines[i].offsetHeight <= room);
}

function applySize(px) {
  el.chart.style.setProperty('--chart-size', px + 'px');
}

/**
 * Shows the reader's size, or the largest smaller one at which every timed line still fits
 * the chart box (a long wrapped line at 40 px on a landscape phone would not: the current
 * line must always be in view). Runs when the size, the song or the box changes; the
 * reader's choice is kept, so rotating back to portrait restores it. A+ is off when the
 * next size would not fit.
 */
export function fitChartSize() {
  const wanted = Math.max(0, CHART_SIZES.indexOf(state.chartSize));
  let i = wanted;
  applySize(CHART_SIZES[i]);
  while (i > 0 && !timedLinesFit()) {
    i -= 1;
    applySize(CHART_SIZES[i]);
  }
  let canGrow = false;
  if (i < CHART_SIZES.length - 1) {
    applySize(CHART_SIZES[i + 1]);
    canGrow = timedLinesFit();
    applySize(CHART_SIZES[i]);
  }
  state.chartShownSize = CHART_SIZES[i];
  el.chartSmaller.disabled = i === 0;
  el.chartLarger.disabled = !canGrow;
}

let fitObserver = null;

/** Re-fits whenever the chart box changes size (rotation, a message, the leader's bar). */
export function watchChartBox() {
  if (fitObserver || typeof ResizeObserver === 'undefined') {
    return;
  }
  let lastHeight = -1;
  let lastWidth = -1;
  fitObserver = new ResizeObserver(() => {
    if (el.chart.clientHeight !== lastHeight || el.chart.clientWidth !== lastWidth) {
      lastHeight = el.chart.clientHeight;
      lastWidth = el.chart.clientWidth;
      fitChartSize();
    }
  });
  fitObserver.observe(el.chart);
}

/**
 * A lyric line with inline chords as chunks, each a chord above the start of its text, so the
 * chord sits over its syllable whatever the font; lines wrap between words, never inside a
 * chord/syllable pair.
 */
function renderInline(div, segments) {
  div.classList.add('inline');
  for (const segment of segments) {
    // the first word carries the chord, the rest of the segment's words follow it
    const words = segment.text.match(/\S*\s*/g).filter(Boolean);
    if (!words.length) {
      words.push('');
    }
    words.forEach((word, i) => {
      const chunk = document.createElement('span');
      chunk.className = 'cp-chunk';
      const chord = document.createElement('span');
      const named = i === 0 && segment.chord;
      chord.className = named ? 'cp-chord' : 'cp-chord blank';
      chord.textContent = named ? segment.chord : '\u00a0';
      const lyric = document.createElement('span');
      lyric.className = 'cp-lyric';
      lyric.textContent = word || '\u00a0';
      chunk.append(chord, lyric);
      div.append(chunk);
    });
  }
}

export function renderSong(song) {
  const title = song && typeof song.title === 'string' ? song.title : '';
  const chart = song && typeof song.chart === 'string' ? song.chart : '';
  if (el.chart.dataset.source === chart && el.chart.dataset.title === title) {
    return;
  }
  el.chart.dataset.source = chart;
  el.chart.dataset.title = title;
  el.chart.replaceChildren();
  state.chartLines = [];
  state.chartCurrent = -1;
  const lines = chart ? chart.split('\n') : [];
  state.chartMap = chart ? chartMath.mapChart(lines) : null;
  el.chartBox.hidden = !chart;
  const facts = {};
  el.chart.scrollTop = 0;
  const padTop = document.createElement('div');
  padTop.className = 'chart-pad';
  el.chart.append(padTop);
  let section = null;
  lines.forEach((line, index) => {
    const info = state.chartMap.lines[index];
    const div = document.createElement('div');
    div.className = 'chart-line';
    const directive = info.kind === 'header' ? chartMath.parseDirective(line) : null;
    if (directive) {
      const name = directive.name;
      if (FACTS.some(([fact]) => fact === name)) {
        if (directive.value && !(name in facts)) {
          facts[name] = directive.value;
        }
        div.hidden = true;
      } else if (NOTES.has(name) && directive.value) {
        div.classList.add('note');
        div.textContent = directive.value;
      } else if (name in SECTION_LABELS) {
        section = name.slice('start_of_'.length);
        div.classList.add('section');
        div.textContent = directive.value || SECTION_LABELS[name];
      } else if (name.startsWith('end_of_')) {
        section = null;
        div.hidden = true;
      } else {
        div.hidden = true; // an unknown directive is markup, not something to read
      }
    } else if (info.kind === 'inline' || (info.kind === 'chords' && line.includes('['))) {
      renderInline(div, chartMath.parseInline(line) || [{ chord: '', text: line }]);
    } else {
      div.textContent = line;
      if (info.kind === 'bars' || info.kind === 'chords') {
        div.classList.add('chords');
      } else if (info.kind === 'header') {
        div.classList.add('section');
      }
    }
    if (section) {
      div.classList.add('in-' + section);
    }
    el.chart.append(div);
    state.chartLines.push(div);
  });
  const padBottom = document.createElement('div');
  padBottom.className = 'chart-pad';
  el.chart.append(padBottom);
  // the song's facts in one line; the title there only when the state row does not show it
  const shownTitle = title || facts.title || '';
  setText(el.songTitle, shownTitle);
  const parts = FACTS.filter(([name]) => name in facts && !(name === 'title' && facts.title === shownTitle))
    .map(([name, read]) => read(facts[name]));
  setText(el.chartFacts, parts.join(' · '));
  el.chartFacts.hidden = !parts.length;
  fitChartSize();
}

/**
 * Highlights the chart line playing at `barBeat` (the line → bar map of chartmap.js, the
 * same on every phone) and scrolls the chart box so that line sits a third of the way down,
 * gliding towards the next one, but never outside the box's visible part.
 */
export function renderChart(barBeat, beatsPerBar) {
  const map = state.chartMap;
  if (!map || !state.chartLines.length) {
    return;
  }
  const at = chartMath.lineAtBar(map, chartMath.barPosition(barBeat, beatsPerBar));
  if (!at) {
    return;
  }
  if (at.index !== state.chartCurrent) {
    state.chartCurrent = at.index;
    for (let i = 0; i < state.chartLines.length; i += 1) {
      state.chartLines[i].classList.toggle('current', i === at.index);
      state.chartLines[i].classList.toggle(
        'current-group', i !== at.index && map.lines[i].owner === at.index);
    }
  }
  const box = el.chart;
  const line = state.chartLines[at.index];
  const nextIndex = map.timed[map.timed.indexOf(at.index) + 1];
  const next = nextIndex === undefined ? line : state.chartLines[nextIndex];
  const height = box.clientHeight;
  const lineTop = line.offsetTop;
  const lineBottom = lineTop + line.offsetHeight;
  let ideal = lineTop + (next.offsetTop - lineTop) * at.fraction - height / 3;
  // keep the line's lyrics in view too when they fit, the line itself always (hidden
  // directive lines have no box and are skipped)
  let groupBottom = lineBottom;
  for (let i = at.index + 1; i < state.chartLines.length && map.lines[i].owner === at.index; i += 1) {
    const owned = state.chartLines[i];
    if (!owned.hidden) {
      groupBottom = Math.max(groupBottom, owned.offsetTop + owned.offsetHeight);
    }
  }
  const low = groupBottom - lineTop <= height ? groupBottom - height : lineBottom - height;
  ideal = Math.min(lineTop, Math.max(low, ideal));
  const target = Math.max(0, Math.min(ideal, box.scrollHeight - height));
  if (Math.abs(box.scrollTop - target) >= 1) {
    box.scrollTop = target;
  }
}
