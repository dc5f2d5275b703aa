/*
 * The song's form on the stage: its sections as a strip of chips with the one playing lit,
 * the leader's call the band waits for ("→ BRIDGE · in 2 bars", "END · in 1 bar"), a VAMP
 * badge on the section being repeated, and the time left in the song.
 *
 * Everything follows the bar the page's own timeline is at: the server places every
 * section's meter and tempo change and every jump on the timeline ahead of time (a jump is a
 * seek: the bar number jumps), and bars run on across meter changes, so the timeline's bar is
 * the song's bar (core/conductor.py). The section playing is the one whose bars hold it
 * (before the first bar, the first; past the end, the last); a call counts down in bars to
 * its `bar`, as a stage cue does, and is gone from its downbeat on.
 *
 * No imports and no DOM at load: the pure part (readForm, sectionOfBar, readShow,
 * comingPhase, comingTexts, formMsAt, timeLeftMs, formatLeft) also runs under node for the
 * tests. Text reaches the page by textContent only: section names come from the leader.
 */

export const SECTIONS_MAX = 200;
export const SECTION_NAME_MAX = 40;
export const VAMP_TEXT = 'VAMP';

const MS_PER_MINUTE = 60000;

function whole(value, min, max) {
  return Number.isInteger(value) && value >= min && value <= max;
}

function tempo(value) {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= 1000;
}

/**
 * The snapshot's `song.sections`, checked, with each section's first bar and start in ms
 * added; null when absent or malformed (no strip is shown).
 */
export function readForm(raw) {
  if (!Array.isArray(raw) || raw.length === 0 || raw.length > SECTIONS_MAX) {
    return null;
  }
  const sections = [];
  let startBar = 1;
  let startMs = 0;
  for (const item of raw) {
    if (!item || typeof item !== 'object') {
      return null;
    }
    const { name, bars, tempoBpm } = item;
    const beatsPerBar = item.beatsPerBar ?? 4;
    const beatUnit = item.beatUnit ?? 4;
    const ramp = item.rampToBpm ?? null;
    if (typeof name !== 'string' || !name.trim() || name.length > SECTION_NAME_MAX) {
      return null;
    }
    if (!whole(bars, 1, 999) || !tempo(tempoBpm) || !whole(beatsPerBar, 1, 16)) {
      return null;
    }
    if (!whole(beatUnit, 1, 64) || (ramp !== null && !tempo(ramp))) {
      return null;
    }
    const section = {
      name: name.trim(), bars, tempoBpm, beatsPerBar, beatUnit, rampToBpm: ramp,
      beats: bars * beatsPerBar, startBar, startMs,
    };
    section.lengthMs = sectionMs(section, section.beats);
    sections.push(Object.freeze(section));
    startBar += bars;
    startMs += section.lengthMs;
  }
  return Object.freeze({ sections: Object.freeze(sections), totalBars: startBar - 1, totalMs: startMs });
}

/**
 * Milliseconds from a section's first downbeat to `beat` beats into it, at its tempo or
 * along its ramp (linear in beats: the closed form of core/song.py).
 */
export function sectionMs(section, beat) {
  const b = Math.min(Math.max(beat, 0), section.beats);
  const t0 = section.tempoBpm;
  const t1 = section.rampToBpm ?? t0;
  if (t1 === t0) {
    return b * MS_PER_MINUTE / t0;
  }
  const k = (t1 - t0) / (section.beats * t0);
  return MS_PER_MINUTE / t0 * Math.log1p(k * b) / k;
}

/** The index of the section holding (1-based) `bar`: the first before it, the last past it. */
export function sectionOfBar(form, bar) {
  const { sections } = form;
  if (!Number.isFinite(bar) || bar < sections[0].startBar) {
    return 0;
  }
  let low = 0;
  let high = sections.length - 1;
  while (low < high) { // the last section starting at or before `bar`
    const mid = (low + high + 1) >> 1;
    if (sections[mid].startBar <= bar) {
      low = mid;
    } else {
      high = mid - 1;
    }
  }
  return low;
}

/**
 * The snapshot's `show`, checked against `form`: {vamp, call}; `vamp` is a section index or
 * null, `call` null or {kind, bar, section, name, atServerTime} (`name` the section's, for
 * a jump). Anything malformed reads as nothing.
 */
export function readShow(raw, form) {
  const none = { vamp: null, call: null };
  if (!raw || typeof raw !== 'object' || !form) {
    return none;
  }
  const count = form.sections.length;
  const vamp = whole(raw.vamp, 0, count - 1) ? raw.vamp : null;
  return { vamp, call: readCall(raw.call, form) };
}

function readCall(raw, form) {
  if (!raw || typeof raw !== 'object' || !Number.isInteger(raw.bar)) {
    return null;
  }
  const at = typeof raw.atServerTime === 'number' && Number.isFinite(raw.atServerTime)
    ? raw.atServerTime : null;
  if (raw.kind === 'end') {
    return Object.freeze({ kind: 'end', bar: raw.bar, section: null, name: null, atServerTime: at });
  }
  if (raw.kind !== 'jump' || !whole(raw.section, 0, form.sections.length - 1)) {
    return null;
  }
  const name = form.sections[raw.section].name;
  return Object.freeze({ kind: 'jump', bar: raw.bar, section: raw.section, name, atServerTime: at });
}

/**
 * Where `call` is when the timeline is at (1-based) `bar` at server time `now`: {phase,
 * bars}; 'pending' with the bars to go, or 'none' (no call, or its downbeat has come: by the
 * bar, or by its instant, since after a jump back the bar number is below the call's again).
 */
export function comingPhase(call, bar, now) {
  if (!call || !Number.isFinite(bar)) {
    return { phase: 'none', bars: 0 };
  }
  if (call.atServerTime !== null && Number.isFinite(now) && now >= call.atServerTime) {
    return { phase: 'none', bars: 0 };
  }
  if (bar >= call.bar) {
    return { phase: 'none', bars: 0 };
  }
  return { phase: 'pending', bars: call.bar - bar };
}

/**
 * The section whose chip wears the VAMP badge at server time `now`: the show's vamp, until a
 * jump out of it that is on the timeline reaches its instant (the server drops the vamp with
 * its next snapshot, up to a conductor step later; the band has left the section already).
 */
export function vampShown(show, now) {
  const call = show.call;
  const jumped = call !== null && call.kind === 'jump' && call.atServerTime !== null &&
    Number.isFinite(now) && now >= call.atServerTime;
  return jumped ? null : show.vamp;
}

/** What the strip says of a pending call: "→ BRIDGE" / "END" and " · in 2 bars". */
export function comingTexts(call, bars) {
  const text = call.kind === 'end' ? 'END' : '\u2192 ' + call.name.toUpperCase();
  return { text, count: ' \u00b7 in ' + bars + (bars === 1 ? ' bar' : ' bars') };
}

/**
 * The song's time (ms from its first downbeat, as the form plays it) at (1-based) `bar` and
 * `beats` beats into that bar: 0 up to the first bar, the whole length past the last.
 */
export function formMsAt(form, bar, beats = 0) {
  if (!Number.isFinite(bar) || bar < 1) {
    return 0;
  }
  if (bar > form.totalBars) {
    return form.totalMs;
  }
  const section = form.sections[sectionOfBar(form, bar)];
  const into = Math.min(Math.max(Number.isFinite(beats) ? beats : 0, 0), section.beatsPerBar);
  return section.startMs + sectionMs(section, (bar - section.startBar) * section.beatsPerBar + into);
}

/**
 * Time left in the song (ms) from `bar` and `beats` into it, at the sections' tempos: to the
 * end of the form, or, with a call pending, to an end's downbeat, or to a jump's downbeat
 * and on from the start of the section it goes to.
 */
export function timeLeftMs(form, bar, beats, call) {
  const here = formMsAt(form, bar, beats);
  if (call && bar < call.bar) {
    const until = Math.max(0, formMsAt(form, call.bar) - here);
    if (call.kind === 'end') {
      return until;
    }
    return until + form.totalMs - form.sections[call.section].startMs;
  }
  return Math.max(0, form.totalMs - here);
}

/** "m:ss" (and "h:mm:ss" from an hour), whole seconds rounded up: 0:00 only at the end. */
export function formatLeft(ms) {
  const total = Math.max(0, Math.ceil((Number.isFinite(ms) ? ms : 0) / 1000 - 1e-6));
  const seconds = String(total % 60).padStart(2, '0');
  const minutes = Math.floor(total / 60);
  if (minutes < 60) {
    return minutes + ':' + seconds;
  }
  return Math.floor(minutes / 60) + ':' + String(minutes % 60).padStart(2, '0') + ':' + seconds;
}

// -- drawing --------------------------------------------------------------------------------

let nodes = null;
let built = null; // the JSON of the sections the chips were built for
let shown = { section: null, vamp: null, target: null, coming: null, left: null, width: -1 };
let lastNow = null;
let info = Object.freeze({ section: null, sectionName: null, coming: null, vamp: null, timeLeftS: null });

function elements() {
  if (nodes === null) {
    nodes = {
      box: document.getElementById('song-form'),
      strip: document.getElementById('form-strip'),
      coming: document.getElementById('form-coming'),
      comingText: document.getElementById('form-coming-text'),
      comingCount: document.getElementById('form-coming-count'),
      left: document.getElementById('form-left-time'),
    };
  }
  return nodes;
}

function put(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

function build(strip, form) {
  const chips = form.sections.map((section) => {
    const chip = document.createElement('span');
    chip.className = 'form-chip';
    chip.setAttribute('role', 'listitem');
    const name = document.createElement('span');
    name.className = 'form-chip-name';
    name.textContent = section.name;
    chip.title = section.name;
    chip.append(name);
    return chip;
  });
  strip.replaceChildren(...chips);
  strip.scrollLeft = 0;
}

/** Scrolls the strip (not the page) so that the current chip is in the middle of it. */
function scrollToChip(strip, chip) {
  const room = strip.clientWidth;
  const most = strip.scrollWidth - room;
  const left = chip.offsetLeft - (room - chip.offsetWidth) / 2;
  strip.scrollLeft = Math.max(0, Math.min(most, left));
}

function setVamp(chip, on) {
  const badge = chip.querySelector('.form-vamp');
  if (on && !badge) {
    const span = document.createElement('span');
    span.className = 'form-vamp';
    span.textContent = VAMP_TEXT;
    chip.append(span);
  } else if (!on && badge) {
    badge.remove();
  }
}

/** What the strip shows now (the hook's `form()`). */
export function formInfo() {
  return { ...info };
}

/**
 * Draws the snapshot's form for server time `now` (called every frame). The box records,
 * for tests and diagnostics, the section lit (`data-section`) and the server time of the
 * frame it was lit in (`data-since`) and of the frame before (`data-before`). Returns the
 * time left in the song (ms), or null when it has no form (the set's time left adds it).
 */
export function renderForm(snapshot, timeline, now) {
  const { box, strip, coming, comingText, comingCount, left } = elements();
  if (!box) {
    return null;
  }
  const song = snapshot && snapshot.song && typeof snapshot.song === 'object' ? snapshot.song : null;
  const form = timeline && now !== null && song ? readForm(song.sections) : null;
  if (!form) {
    if (!box.hidden) {
      box.hidden = true;
      box.dataset.section = '';
    }
    built = null; // built again when a form comes back: no chip keeps an old lit state
    info = Object.freeze({ section: null, sectionName: null, coming: null, vamp: null, timeLeftS: null });
    lastNow = now;
    return null;
  }
  const key = JSON.stringify(form.sections.map((s) => s.name));
  if (key !== built) {
    build(strip, form);
    built = key;
    shown = { section: null, vamp: null, target: null, coming: null, left: null, width: -1 };
  }
  if (box.hidden) {
    box.hidden = false;
  }
  const bb = timeline.barBeatAt(now);
  const index = sectionOfBar(form, bb.bar);
  const chips = strip.children;
  if (index !== shown.section) {
    if (shown.section !== null && chips[shown.section]) {
      chips[shown.section].classList.remove('current');
      chips[shown.section].removeAttribute('aria-current');
    }
    chips[index].classList.add('current');
    chips[index].setAttribute('aria-current', 'step');
    box.dataset.before = lastNow === null ? '' : String(lastNow);
    box.dataset.since = String(now);
    box.dataset.section = String(index);
    shown.section = index;
    shown.width = -1; // scroll to it below
  }
  lastNow = now;
  const show = readShow(snapshot.show, form);
  const vamp = vampShown(show, now);
  if (vamp !== shown.vamp) {
    if (shown.vamp !== null && chips[shown.vamp]) {
      setVamp(chips[shown.vamp], false);
    }
    if (vamp !== null) {
      setVamp(chips[vamp], true);
    }
    shown.vamp = vamp;
    shown.width = -1;
  }
  const phase = comingPhase(show.call, bb.bar, now);
  const pending = phase.phase === 'pending';
  const target = pending && show.call.kind === 'jump' ? show.call.section : null;
  if (target !== shown.target) {
    if (shown.target !== null && chips[shown.target]) {
      chips[shown.target].classList.remove('target');
    }
    if (target !== null) {
      chips[target].classList.add('target');
    }
    shown.target = target;
  }
  let comingLine = null;
  if (pending) {
    const texts = comingTexts(show.call, phase.bars);
    put(comingText, texts.text);
    put(comingCount, texts.count);
    comingLine = texts.text + texts.count;
  }
  if (comingLine !== shown.coming) {
    coming.hidden = !pending;
    coming.dataset.kind = pending ? show.call.kind : '';
    shown.coming = comingLine;
    shown.width = -1; // the strip got narrower or wider
  }
  const beats = (bb.beat - 1) + bb.fraction;
  const leftMs = timeLeftMs(form, bb.bar, beats, pending ? show.call : null);
  const leftText = formatLeft(leftMs);
  put(left, leftText);
  if (strip.clientWidth !== shown.width) {
    scrollToChip(strip, chips[index]);
    shown.width = strip.clientWidth;
  }
  info = Object.freeze({
    section: index,
    sectionName: form.sections[index].name,
    coming: comingLine,
    vamp,
    timeLeftS: Math.max(0, Math.ceil(leftMs / 1000 - 1e-6)),
  });
  return leftMs;
}
