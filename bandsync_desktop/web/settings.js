/*
 * What a phone remembers between visits (localStorage) and the limits of what it may hold,
 * and the settings sheet: the player's click sound, volume, accent, subdivisions, vibration,
 * spoken count-in, audio output and its latency, chosen in one compact sheet that opens from
 * one button.
 *
 * The sheet only shows values and reports choices: what a choice does (the audio graph, the
 * scheduler, the calibration) is audio.js's, passed in as `actions` (no import of audio.js
 * here, so state.js can read the stored values without a module cycle).
 */

import { $, setText } from './dom.js';

export const STORE = {
  name: 'bandsync.name',
  clientId: 'bandsync.clientId',
  /** The old ±100 ms "click timing" (positive = later), read once to carry it over. */
  nudge: 'bandsync.nudgeMs',
  click: 'bandsync.click',
  chartSize: 'bandsync.chartSize',
  session: 'bandsync.session',
  sound: 'bandsync.sound',
  volume: 'bandsync.volume',
  accent: 'bandsync.accent',
  subdivision: 'bandsync.subdivision',
  vibrate: 'bandsync.vibrate',
  voice: 'bandsync.voice',
  output: 'bandsync.output',
  /** JSON {speaker, wired, bluetooth}: each output's latency, in ms. */
  outputDelays: 'bandsync.outputDelays',
};

export const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export const NAME_MAX = 40;

// The output latency the page takes back (core/validation.py OUTPUT_DELAY_MIN_MS/MAX_MS):
// positive = the output lags (Bluetooth: 150-300 ms) and the click is sent that much earlier;
// a little negative room for a tap that lands early by habit.
export const NUDGE_MIN = -50;

export const NUDGE_MAX = 400;

export const NUDGE_STEP = 5;

/** Click sounds, synthesised by audio.js (nothing to download). */
export const SOUNDS = Object.freeze({ beep: 'Beep', wood: 'Wood', hat: 'Hi-hat' });

/** Clicks per beat for each subdivision choice. */
export const SUBDIVISIONS = Object.freeze({ off: 1, eighths: 2, triplets: 3, sixteenths: 4 });

/** The outputs a player tells apart (core/validation.py OUTPUTS); each keeps its latency. */
export const OUTPUTS = Object.freeze({ speaker: 'Speaker', wired: 'Wired', bluetooth: 'Bluetooth' });

export function load(key, fallback) {
  try {
    const value = window.localStorage.getItem(key);
    return value === null ? fallback : value;
  } catch (err) {
    return fallback;
  }
}

export function save(key, value) {
  try {
    window.localStorage.setItem(key, String(value));
  } catch (err) {
    /* private mode: settings last for this page only */
  }
}

function forget(key) {
  try {
    window.localStorage.removeItem(key);
  } catch (err) {
    /* private mode */
  }
}

export function stableClientId() {
  let id = load(STORE.clientId, '');
  if (!ID_RE.test(id)) {
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    id = 'w-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    save(STORE.clientId, id);
  }
  return id;
}

export function clampNudge(value) {
  const n = Math.round(Number(value));
  return Number.isFinite(n) ? Math.max(NUDGE_MIN, Math.min(NUDGE_MAX, n)) : 0;
}

function choice(key, table, fallback) {
  const value = load(key, fallback);
  return Object.prototype.hasOwnProperty.call(table, value) ? value : fallback;
}

export function clampVolume(value) {
  const n = Math.round(Number(value));
  return Number.isFinite(n) ? Math.max(0, Math.min(100, n)) : 100;
}

/**
 * Each output's latency, in ms. A phone that kept the old "click timing" (positive = later,
 * the opposite sense) starts its speaker's latency from it, turned round.
 */
export function loadOutputDelays() {
  const delays = { speaker: 0, wired: 0, bluetooth: 0 };
  let stored = null;
  try {
    stored = JSON.parse(load(STORE.outputDelays, 'null'));
  } catch (err) {
    stored = null;
  }
  if (stored && typeof stored === 'object') {
    for (const key of Object.keys(OUTPUTS)) {
      delays[key] = clampNudge(stored[key] ?? 0);
    }
  } else {
    const old = load(STORE.nudge, null);
    if (old !== null) {
      delays.speaker = clampNudge(-Number(old));
      forget(STORE.nudge);
      save(STORE.outputDelays, JSON.stringify(delays));
    }
  }
  return delays;
}

/** Every choice of the sheet, as stored (or the defaults: today's beep at full volume, no
 * spoken count-in: what a band hears at the top of a song changes only when a player asks). */
export function loadComforts() {
  return {
    sound: choice(STORE.sound, SOUNDS, 'beep'),
    volume: clampVolume(load(STORE.volume, '100')),
    accent: load(STORE.accent, 'true') !== 'false',
    subdivision: choice(STORE.subdivision, SUBDIVISIONS, 'off'),
    vibrate: load(STORE.vibrate, 'false') === 'true',
    voice: load(STORE.voice, 'false') === 'true',
    output: choice(STORE.output, OUTPUTS, 'speaker'),
    outputDelays: loadOutputDelays(),
  };
}

export function saveComfort(key, value) {
  save(STORE[key], key === 'outputDelays' ? JSON.stringify(value) : value);
}

/** "+220 ms", "−20 ms", "0 ms". */
export function formatDelay(ms) {
  return (ms > 0 ? '+' : ms < 0 ? '\u2212' : '') + Math.abs(ms) + ' ms';
}

// -- the sheet ------------------------------------------------------------------------------

const sheet = {
  root: $('settings'),
  open: $('settings-open'),
  close: $('settings-close'),
  sound: $('set-sound'),
  volume: $('set-volume'),
  volumeValue: $('set-volume-value'),
  subdivision: $('set-subdivision'),
  accent: $('set-accent'),
  vibrate: $('set-vibrate'),
  voice: $('set-voice'),
  output: $('set-output'),
  delay: $('set-delay'),
  calibrate: $('calibrate-open'),
  note: $('set-note'),
};

function pressOnly(group, value) {
  for (const button of group.querySelectorAll('button[data-value]')) {
    button.setAttribute('aria-pressed', String(button.dataset.value === value));
  }
}

/** Shows `comforts` (loadComforts()'s shape) on the sheet. */
export function showComforts(comforts, vibrationSupported) {
  pressOnly(sheet.sound, comforts.sound);
  pressOnly(sheet.subdivision, comforts.subdivision);
  pressOnly(sheet.output, comforts.output);
  if (Number(sheet.volume.value) !== comforts.volume) {
    sheet.volume.value = String(comforts.volume);
  }
  setText(sheet.volumeValue, comforts.volume + ' %');
  sheet.accent.setAttribute('aria-pressed', String(comforts.accent));
  sheet.vibrate.setAttribute('aria-pressed', String(comforts.vibrate && vibrationSupported));
  sheet.vibrate.disabled = !vibrationSupported;
  sheet.voice.setAttribute('aria-pressed', String(comforts.voice));
  setText(sheet.delay, formatDelay(comforts.outputDelays[comforts.output]));
}

/** The sheet's note: why vibration is off, or that the audio output changed. */
export function showSheetNote(text) {
  setText(sheet.note, text);
  sheet.note.hidden = !text;
}

export function sheetOpen() {
  return !sheet.root.hidden;
}

export function openSheet() {
  sheet.root.hidden = false;
  sheet.open.setAttribute('aria-expanded', 'true');
  sheet.open.classList.remove('attention');
  sheet.close.focus();
}

export function closeSheet() {
  if (sheet.root.hidden) {
    return;
  }
  sheet.root.hidden = true;
  sheet.open.setAttribute('aria-expanded', 'false');
  sheet.open.focus();
}

/** The settings button asks to be looked at (an audio output came or went). */
export function flagSheet() {
  sheet.open.classList.add('attention');
}

/**
 * Wires the sheet. `actions`: {sound(v), volume(n), subdivision(v), accent(bool),
 * vibrate(bool), voice(bool), output(v), calibrate()}; each is called with the player's
 * choice.
 */
export function bindSheet(actions) {
  sheet.open.addEventListener('click', () => (sheetOpen() ? closeSheet() : openSheet()));
  sheet.close.addEventListener('click', closeSheet);
  sheet.root.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      closeSheet();
    }
  });
  const group = (node, action) => node.addEventListener('click', (event) => {
    const button = event.target.closest('button[data-value]');
    if (button) {
      action(button.dataset.value);
    }
  });
  group(sheet.sound, actions.sound);
  group(sheet.subdivision, actions.subdivision);
  group(sheet.output, actions.output);
  sheet.volume.addEventListener('input', () => actions.volume(Number(sheet.volume.value)));
  const toggle = (node, action) => node.addEventListener('click', () => {
    action(node.getAttribute('aria-pressed') !== 'true');
  });
  toggle(sheet.accent, actions.accent);
  toggle(sheet.vibrate, actions.vibrate);
  toggle(sheet.voice, actions.voice);
  sheet.calibrate.addEventListener('click', () => {
    closeSheet();
    actions.calibrate();
  });
}
