/*
 * Audio: the click, scheduled on the audio clock from the timeline; its sound, volume, accent
 * and subdivisions; the spoken count-in; vibration on the beat; the output latency (the nudge)
 * and the tap-along calibration that measures it (the math in calibrate.js).
 */

import { offsetNow, reportSync } from './clock.js';
import { $, el, setText } from './dom.js';
import {
  bindSheet, clampNudge, clampVolume, closeSheet, flagSheet, formatDelay, loadComforts,
  NUDGE_MAX, NUDGE_MIN, OUTPUTS, save, saveComfort, sheetOpen, showComforts, showSheetNote,
  SOUNDS, STORE, SUBDIVISIONS,
} from './settings.js';
import { state } from './state.js';

const calibrate = window.BandSyncCalibrate;

export const LOOKAHEAD_MS = 120;

export const SCHEDULE_EVERY_MS = 25;

export const CLICK_LOG = 64;

export function ensureAudio() {
  if (state.audio) {
    return state.audio;
  }
  const Ctx = window.AudioContext || window.webkitAudioContext;
  if (!Ctx) {
    return null;
  }
  state.audio = new Ctx({ latencyHint: 'interactive' });
  state.audio.addEventListener('statechange', showClickState);
  // Every sound goes through one gain: the player's volume.
  master = state.audio.createGain();
  master.gain.value = volumeGain(comforts.volume);
  master.connect(state.audio.destination);
  return state.audio;
}

// A context the engine has not started this long after the gesture will not start by itself:
// Firefox with no audio output keeps it "suspended" for good, iOS Safari "interrupted" after a
// call. The toggle says so rather than claim a click nobody hears.
export const AUDIO_START_MS = 1500;

// While the click is on and the context is not running, ask the engine to resume it this often
// (an interruption that ended, or a gesture the autoplay policy now counts).
export const AUDIO_RESUME_EVERY_MS = 1000;

let audioWantedSince = null;
let lastResume = -Infinity;

/** The toggle's words: 'Click off', 'Click on', or 'No sound' while the audio is not running. */
export function showClickState() {
  const ctx = state.audio;
  const running = ctx !== null && ctx.state === 'running';
  if (!state.clickEnabled || running) {
    audioWantedSince = null;
  }
  const silent = state.clickEnabled && !running && audioWantedSince !== null &&
    performance.now() - audioWantedSince >= AUDIO_START_MS;
  setText(el.clickToggle, !state.clickEnabled ? 'Click off' : silent ? 'No sound' : 'Click on');
  el.clickToggle.title = silent
    ? 'The browser has not started audio: check the sound output, then tap twice' : '';
}

function resumeAudio(ctx) {
  lastResume = performance.now();
  if (audioWantedSince === null) {
    audioWantedSince = lastResume;
  }
  ctx.resume().catch(() => {});
}

// The audio-clock map (readAudioMap): readings older than this leave the window, so a slow
// drift between the audio and the system crystal (100 ppm: 0.2 ms over the window) is followed.
export const AUDIO_MAP_WINDOW_MS = 2000;

// Readings of a stamp (getOutputTimestamp) scatter evenly about the truth: the map is their
// median, moved neither by an engine's clock leaping ahead for a reading or two now and then
// nor by a stall and its catching up.
export const AUDIO_MAP_QUANTILE = 0.5;

// Readings of currentTime are a staircase: currentTime holds still while a buffer plays and
// then steps on by it (Firefox on PulseAudio: ~20 ms; WebKitGTK: one 128-frame quantum), so
// a reading is late by however long ago the last step was, and only the reading just after a
// step is about "now". The map is the top of the staircase, worked out from two quantiles of
// the window (readings spread evenly over a step: the top lies (q80 - q20) / 3 above q80), so
// the one reading in five that leaps (WebKitGTK on PulseAudio: +45 ms) does not move it.
export const AUDIO_MAP_STEP_QUANTILES = Object.freeze([0.2, 0.8]);

// Before the map is trusted it needs this many readings over at least this span, and the
// older and newer halves of them must agree within AUDIO_MAP_SETTLE_TOLERANCE_S: an audio
// clock that has just started runs unevenly while the output fills its buffer (WebKitGTK on
// PulseAudio: its readings slid by ~200 ms over the first quarter second, then held still).
export const AUDIO_MAP_SETTLE_READINGS = 6;

export const AUDIO_MAP_SETTLE_MS = 300;

export const AUDIO_MAP_SETTLE_TOLERANCE_S = 0.002;

// The audio clock itself moved (output device changed, the context stalled for good): the
// last JUMP_READINGS readings all lie this far from the map on one side and agree among
// themselves to within AUDIO_MAP_JUMP_SPREAD_S (a stall's readings slide instead). The map
// starts over from them.
export const AUDIO_MAP_JUMP_S = 0.05;

export const AUDIO_MAP_JUMP_SPREAD_S = 0.04;

export const AUDIO_MAP_JUMP_READINGS = 8;

// Clicks already placed stay where they are until the map has been further than this from
// the one they were placed with for AUDIO_MAP_MOVE_MS (a burst of leaps or a stall and its
// catching up pass sooner); then the ones not yet heard are placed again. The audio clock
// drifts against the system's (the two crystals; 300 ppm on the benchmark's VM: 2 ms in 7 s),
// so this is also how far the click may drift before it is put right (1 ms was tried: the
// placing again every few seconds left stale entries in the click log around a stop).
export const AUDIO_MAP_TOLERANCE_S = 0.002;

export const AUDIO_MAP_MOVE_MS = 300;

// The audio clock stalled: currentTime has held still this long while the context runs (an
// output that stopped taking samples; WebKitGTK on PulseAudio holds it for 0.8-1.5 s about a
// second after the click is turned on in about half of the tries, then runs fast to catch up;
// its regular holds are ~40 ms, Firefox's buffer steps ~20 ms). Nothing placed on a stalled
// clock sounds when it should: the clicks not yet heard are taken back, none is placed, and
// the map starts over once the clock runs again, so it settles only after the catching up
// (the readings of a clock that runs fast do not settle).
export const AUDIO_STALL_MS = 100;

// A stamp from getOutputTimestamp() is about the sample leaving the speaker now: one whose
// performanceTime is further than this from performance.now() is not in that time base.
export const OUTPUT_STAMP_MAX_SKEW_MS = 250;

// A stamp says how far what is heard lags what is rendered: (currentTime - contextTime) less
// how old the stamp is. One whose lag is within this of 0 while the engine reports an output
// latency has not counted the output at all: Firefox pairs currentTime - outputLatency with
// performance.now() - outputLatency, so the two shifts cancel (its stamp is "what is rendered
// now is heard now"). After this many such stamps in a row the context's stamps are broken
// for good.
export const OUTPUT_STAMP_NO_LATENCY_S = 0.002;

export const OUTPUT_STAMP_BAD_READINGS = 4;

// An engine that reports no output latency at all (outputLatency 0: WebKit outside Apple's
// platforms, per its source) still has one after its render quantum (baseLatency): WebKitGTK
// hands the quantum to a GStreamer pulsesink, which holds one segment (its latency-time,
// 10 ms by default) before PulseAudio. It is a constant because no API says it; the heard
// benchmark (bench/heard_bench.py) measures it. A phone's player takes out whatever is left
// with the latency nudge.
export const UNREPORTED_OUTPUT_LATENCY_S = 0.010;

// A context's first moments are a start-up transient: its audio thread renders ahead to fill
// the output's buffer, so currentTime and the output's latency are not yet what they will be.
// Firefox keeps the first outputLatency it is asked for (getOutputTimestamp() asks too); asked
// on the first audio callback, it once left the click 28 ms late for a whole run (the heard
// benchmark, 3 December). Nothing is read from a context until it has rendered this much.
export const AUDIO_WARMUP_S = 0.5;

// The filter's state, for the one AudioContext the page has (state.audio).
let clock = null;

// How many times the audio clock stalled (stalledClock), for the hook.
let stalls = 0;

// The context's outputLatency as first read, with currentTime and performance.now() read at
// the same instant: {ctx, value (a reading: currentTime - outputLatency - perfNow / 1000),
// currentTime, valid, offset (estimateMap)}. No longer valid once the context stops running.
let firstPair = null;

function freshClock(ctx, stampBroken) {
  return {
    ctx, readings: [], stampBroken, badStamps: 0, held: null, movedSince: null, source: null,
    latency: null, anchor: null, raw: null, lastTime: null, lastMovedAt: null, stalled: false,
  };
}

/**
 * The latency from currentTime (what is rendered) to what is heard, as the engine tells it:
 * {latency (s), sampled}. `sampled`: the engine's outputLatency, the output stream's latency
 * at the moment it was asked, to be paired with currentTime read at that moment.
 */
function outputLatency(ctx) {
  const reported = ctx.outputLatency;
  if (reported > 0) {
    return { latency: reported, sampled: true, kind: 'outputLatency' };
  }
  const base = ctx.baseLatency > 0 ? ctx.baseLatency : 0;
  return { latency: base + UNREPORTED_OUTPUT_LATENCY_S, sampled: false, kind: 'unreported' };
}

/**
 * One reading of the audio clock against the local clock, in seconds: contextTime (s) minus
 * perfMs / 1000, where contextTime is the sample heard at perfMs. getOutputTimestamp() pairs
 * the two directly (Chromium: good to ~1 ms). Some engines' stamps are not usable: WebKitGTK
 * 2.50's performanceTime runs ahead of performance.now() by the context's age, and Firefox's
 * counts no output latency (OUTPUT_STAMP_NO_LATENCY_S). Such a context's stamps are broken
 * for good; then currentTime less the output latency is read instead (outputLatency()).
 * Returns null when no reading can be had yet (the first audio callback has not run).
 */
function readClock(ctx, perfNow) {
  const currentTime = ctx.currentTime;
  if (!(currentTime >= AUDIO_WARMUP_S)) {
    // before the first audio callbacks are done with their start-up: nothing to pair an
    // outputLatency with (Firefox keeps the first one it is asked for)
    return null;
  }
  const { latency, sampled, kind } = outputLatency(ctx);
  if (sampled && (firstPair === null || firstPair.ctx !== ctx)) {
    firstPair = {
      ctx, value: currentTime - latency - perfNow / 1000, currentTime, valid: true, offset: null,
    };
  }
  // asked once a reading: the hook records it even where the page no longer uses it
  const stamp = typeof ctx.getOutputTimestamp === 'function' ? ctx.getOutputTimestamp() : null;
  clock.raw = rawReading(ctx, perfNow, currentTime, stamp);
  if (!clock.stampBroken && stamp !== null) {
    if (!stamp || !(stamp.performanceTime > 0) || !(stamp.contextTime > 0)) {
      return null; // the first audio callback has not run yet: try again next tick
    }
    const lag = currentTime - stamp.contextTime - (perfNow - stamp.performanceTime) / 1000;
    const inBase = Math.abs(stamp.performanceTime - perfNow) <= OUTPUT_STAMP_MAX_SKEW_MS &&
      stamp.contextTime <= currentTime + 0.001;
    const counted = !(ctx.outputLatency > OUTPUT_STAMP_NO_LATENCY_S) ||
      Math.abs(lag) > OUTPUT_STAMP_NO_LATENCY_S;
    if (inBase && counted) {
      clock.badStamps = 0;
      return {
        value: stamp.contextTime - stamp.performanceTime / 1000,
        source: 'outputTimestamp',
        latency: lag,
        sampled: true,
      };
    }
    clock.badStamps += 1;
    if (inBase && clock.badStamps < OUTPUT_STAMP_BAD_READINGS) {
      return null; // a stamp or two short of the latency (a stall) is no verdict yet
    }
    const raw = clock.raw;
    clock = freshClock(ctx, true); // readings taken from the bad stamps go with them
    clock.raw = raw;
  }
  return {
    value: currentTime - latency - perfNow / 1000,
    source: 'currentTime',
    latency,
    latencyKind: kind,
    sampled,
  };
}

/** What the engine says of its audio clock at perfNow (its currentTime and output stamp then),
 * as it says it (for the hook: the heard benchmark compares it with what is heard). */
function rawReading(ctx, perfNow, currentTime, stamp) {
  return {
    perfNow,
    currentTime,
    outputLatency: typeof ctx.outputLatency === 'number' ? ctx.outputLatency : null,
    baseLatency: typeof ctx.baseLatency === 'number' ? ctx.baseLatency : null,
    stampContextTime: stamp ? stamp.contextTime : null,
    stampPerformanceTime: stamp ? stamp.performanceTime : null,
    sampleRate: ctx.sampleRate,
    firstPair: firstPair && firstPair.ctx === ctx ? { ...firstPair, ctx: undefined } : null,
  };
}

/** The top of a staircase of readings (AUDIO_MAP_STEP_QUANTILES). */
function staircaseTop(values) {
  const [lo, hi] = AUDIO_MAP_STEP_QUANTILES;
  const low = quantile(values, lo);
  const high = quantile(values, hi);
  return high + (high - low) * (1 - hi) / (hi - lo);
}

/**
 * The map the readings in the window say. A stamp's readings: their median. currentTime's:
 * the top of their staircase, where a constant latency (baseLatency and the unreported one)
 * belongs. An outputLatency is sampled instead: the output stream's latency at the instant it
 * was read, somewhere down the staircase (Firefox keeps the first it is asked for), so only
 * the reading of that instant (firstPair) pairs it with its own currentTime and is exact. The
 * map is that reading, carried along as the top of the staircase moves (the top's own offset
 * from the truth cancels).
 */
function estimateMap(readings, sampled) {
  const values = readings.map((r) => r.value);
  if (clock.source !== 'currentTime') {
    return quantile(values, AUDIO_MAP_QUANTILE);
  }
  const top = staircaseTop(values);
  const pair = firstPair !== null && firstPair.ctx === clock.ctx && firstPair.valid && sampled
    ? firstPair : null;
  if (pair === null) {
    clock.anchor = null;
    return top;
  }
  if (pair.offset === null) {
    // how far below the top of the staircase the pair's instant was: a property of the
    // output stream (its buffer and the instant its latency was taken), so it holds when the
    // clock itself jumps, until the context stops
    pair.offset = pair.value - top;
  }
  clock.anchor = pair.offset;
  return top + pair.offset;
}

/**
 * The audio clock against the local clock: contextTime (s) = perfMs / 1000 + map.
 *
 * Every engine but Chromium moves the audio clock in buffer steps (tens of ms in Firefox) and
 * coarsens performance.now() to ~1 ms, so single readings scatter far more than a click may be
 * off; the map is worked out from the readings over a sliding window (estimateMap). A jump of
 * the clock itself starts the map over, and so does a context that stops running. The map the
 * clicks were placed with is held until the estimate moves beyond the tolerance; then the
 * clicks not yet heard are placed again.
 * Returns null while the audio clock is not running or its map has not settled yet.
 */
export function readAudioMap(ctx) {
  if (!clock || clock.ctx !== ctx) {
    clock = freshClock(ctx, false);
  }
  if (ctx.state !== 'running') {
    clock = freshClock(ctx, clock.stampBroken);
    if (firstPair !== null && firstPair.ctx === ctx) {
      firstPair.valid = false; // a context that runs again plays from a new position
    }
    state.audioMap = null;
    return null;
  }
  const perfNow = performance.now();
  if (stalledClock(ctx, perfNow)) {
    state.audioMap = null;
    return null;
  }
  const reading = readClock(ctx, perfNow);
  if (reading === null) {
    return null;
  }
  let readings = clock.readings.filter((r) => r.at > perfNow - AUDIO_MAP_WINDOW_MS);
  readings.push({ at: perfNow, value: reading.value });
  if (jumped(readings)) {
    readings = readings.slice(-AUDIO_MAP_JUMP_READINGS);
    if (clock.held !== null) {
      clock.held = null;
      if (state.scheduled.length) {
        cancelClicks(); // placed by the old map: they would sound at the wrong time
      }
    }
  }
  clock.readings = readings;
  clock.source = reading.source;
  clock.latency = { s: reading.latency, kind: reading.latencyKind ?? 'outputTimestamp' };
  if (clock.held === null && !settled(readings, perfNow)) {
    state.audioMap = null;
    return null;
  }
  const map = estimateMap(readings, reading.sampled);
  if (clock.held === null) {
    clock.held = map;
    clock.movedSince = null;
  } else if (Math.abs(map - clock.held) <= AUDIO_MAP_TOLERANCE_S) {
    clock.movedSince = null;
  } else if (clock.movedSince === null) {
    clock.movedSince = perfNow;
  } else if (perfNow - clock.movedSince >= AUDIO_MAP_MOVE_MS) {
    clock.held = map;
    clock.movedSince = null;
    cancelClicks(); // scheduleClicks places the ones not yet heard again from now on
  }
  state.audioMap = clock.held;
  return clock.held;
}

/** Whether the audio clock has stalled (AUDIO_STALL_MS); the first reading of a stall starts
 * the map over and takes back the clicks not yet heard. */
function stalledClock(ctx, perfNow) {
  const currentTime = ctx.currentTime;
  if (!(currentTime > 0)) {
    return false; // not started: readClock waits for it
  }
  if (currentTime !== clock.lastTime) {
    clock.lastTime = currentTime;
    clock.lastMovedAt = perfNow;
    clock.stalled = false;
    return false;
  }
  if (perfNow - clock.lastMovedAt < AUDIO_STALL_MS) {
    return false;
  }
  if (!clock.stalled) {
    const { lastTime, lastMovedAt } = clock;
    clock = freshClock(ctx, clock.stampBroken); // the readings since it held still go too
    Object.assign(clock, { lastTime, lastMovedAt, stalled: true });
    stalls += 1;
    if (state.scheduled.length) {
      cancelClicks();
    }
  }
  return true;
}

/** The spread of the map's readings (s), for the hook: a staircase's width shows there. */
function readingsSummary(readings) {
  const values = readings.map((r) => r.value);
  return {
    n: values.length,
    min: quantile(values, 0),
    q10: quantile(values, 0.1),
    q90: quantile(values, 0.9),
    max: quantile(values, 1),
  };
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.round(q * (sorted.length - 1))];
}

/** Whether the newest readings say the audio clock itself moved (AUDIO_MAP_JUMP_S). */
function jumped(readings) {
  if (readings.length <= AUDIO_MAP_JUMP_READINGS) {
    return false;
  }
  const before = quantile(
    readings.slice(0, -AUDIO_MAP_JUMP_READINGS).map((r) => r.value), AUDIO_MAP_QUANTILE);
  const recent = readings.slice(-AUDIO_MAP_JUMP_READINGS).map((r) => r.value);
  const low = Math.min(...recent);
  const high = Math.max(...recent);
  return high - low <= AUDIO_MAP_JUMP_SPREAD_S &&
    (low - before > AUDIO_MAP_JUMP_S || before - high > AUDIO_MAP_JUMP_S);
}

/** Whether the map has stopped moving (AUDIO_MAP_SETTLE_MS): its two halves agree. */
function settled(readings, perfNow) {
  const span = perfNow - readings[0].at;
  if (readings.length < AUDIO_MAP_SETTLE_READINGS || span < AUDIO_MAP_SETTLE_MS) {
    return false;
  }
  const middle = readings[0].at + span / 2;
  const older = readings.filter((r) => r.at < middle).map((r) => r.value);
  const newer = readings.filter((r) => r.at >= middle).map((r) => r.value);
  return older.length > 0 && newer.length > 0 &&
    Math.abs(quantile(older, AUDIO_MAP_QUANTILE) - quantile(newer, AUDIO_MAP_QUANTILE)) <=
      AUDIO_MAP_SETTLE_TOLERANCE_S;
}

// -- what the player chose (settings.js keeps it; the sheet shows it) ----------------------

/** The sheet's choices, loaded once: {sound, volume, accent, subdivision, vibrate, voice,
 * output, outputDelays}. The latency in force (state.nudgeMs) is outputDelays[output]. */
const comforts = loadComforts();

/** The one gain every sound goes through (the player's volume), made with the context. */
let master = null;

/** Volume (0-100 %) to gain: squared, so the slider's middle sounds like half as loud. */
export function volumeGain(volume) {
  return (clampVolume(volume) / 100) ** 2;
}

// Each sound's three voices: the accented downbeat, any other beat, a subdivision. Peaks are
// before the volume; decays in seconds. The beep is the page's original click.
export const VOICES = Object.freeze({
  beep: {
    accent: { freq: 1760, peak: 0.9, decay: 0.04 },
    beat: { freq: 1175, peak: 0.6, decay: 0.04 },
    sub: { freq: 880, peak: 0.35, decay: 0.025 },
  },
  // a woodblock: a bright, fast-dying tone that drops in pitch as it dies
  wood: {
    accent: { freq: 1500, peak: 0.9, decay: 0.03 },
    beat: { freq: 1100, peak: 0.6, decay: 0.022 },
    sub: { freq: 900, peak: 0.35, decay: 0.015 },
  },
  // a hi-hat: a burst of noise above a high-pass, longer (more open) on the downbeat
  hat: {
    accent: { cutoff: 6000, peak: 0.9, decay: 0.09 },
    beat: { cutoff: 7500, peak: 0.6, decay: 0.045 },
    sub: { cutoff: 9000, peak: 0.35, decay: 0.025 },
  },
});

const noiseBuffers = new WeakMap();

function noiseBuffer(ctx) {
  let buffer = noiseBuffers.get(ctx);
  if (!buffer) {
    buffer = ctx.createBuffer(1, Math.ceil(ctx.sampleRate * 0.2), ctx.sampleRate);
    const data = buffer.getChannelData(0);
    // the same noise every time (xorshift32): each hi-hat click sounds alike
    let seed = 0x9e3779b9;
    for (let i = 0; i < data.length; i += 1) {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      data[i] = (seed >>> 0) / 0x80000000 - 1;
    }
    noiseBuffers.set(ctx, buffer);
  }
  return buffer;
}

/**
 * One click at audio time `when` into `destination` (the volume's gain, or any node: the
 * tests render into an OfflineAudioContext). `voice`: {sound, accent, sub}.
 * Returns {node, peak}: the source node (stopped to cancel the click) and its peak gain.
 */
export function playClick(ctx, destination, when, voice) {
  const sound = SOUNDS[voice.sound] ? voice.sound : 'beep';
  const shape = VOICES[sound][voice.sub ? 'sub' : voice.accent ? 'accent' : 'beat'];
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, when);
  gain.gain.linearRampToValueAtTime(shape.peak, when + 0.001);
  gain.gain.exponentialRampToValueAtTime(0.001, when + shape.decay);
  let source;
  if (sound === 'hat') {
    source = ctx.createBufferSource();
    source.buffer = noiseBuffer(ctx);
    const filter = ctx.createBiquadFilter();
    filter.type = 'highpass';
    filter.frequency.value = shape.cutoff;
    source.connect(filter).connect(gain);
  } else {
    source = ctx.createOscillator();
    if (sound === 'wood') {
      source.type = 'triangle';
      source.frequency.setValueAtTime(shape.freq, when);
      source.frequency.exponentialRampToValueAtTime(shape.freq * 0.7, when + shape.decay);
    } else {
      source.frequency.value = shape.freq;
    }
    source.connect(gain);
  }
  gain.connect(destination);
  source.start(when);
  source.stop(when + shape.decay + 0.01);
  return { node: source, peak: shape.peak };
}

function stopFuture(items, now) {
  for (const item of items) {
    if (item.audioTime > now) {
      try {
        item.node.stop();
        item.node.disconnect();
      } catch (err) {
        /* already stopped */
      }
      item.entry.cancelled = true;
      if (item.spoken) {
        item.spoken.cancelled = true; // the click's entry of a beat the voice took
      }
    }
  }
}

// -- the spoken count-in ---------------------------------------------------------------------

/** The numbers the page ships (scripts/make_voice): web/voice/1.wav ... 12.wav. */
export const VOICE_NUMBERS = 12;

/** The samples peak at -1 dBFS; the volume's gain follows, as for the clicks. */
export const VOICE_GAIN = 1.0;

/** A word longer than its beat is cut at the next beat, faded out over this long. */
export const VOICE_FADE_S = 0.012;

/**
 * The word a drummer calls on a count-in beat, or null for a beat left to the click.
 * `beatsLeft`: whole beats to the song's downbeat (beatsPerBar..1 in the last bar).
 * The last bar counts every beat ("one two three four"); a bar before it is called at half
 * time when the bar has a middle ("one … two …" on beats 1 and 3 of 4/4, 1 and 4 of 6/8);
 * a bar with an odd number of beats (3/4, 5/4, 7/8) counts every beat in every bar.
 */
export function countInWord(beatsLeft, inBar, beatsPerBar) {
  if (beatsLeft <= beatsPerBar || beatsPerBar % 2 === 1) {
    return inBar;
  }
  const half = beatsPerBar / 2;
  return (inBar - 1) % half === 0 ? (inBar - 1) / half + 1 : null;
}

// The samples of the one AudioContext: fetched and decoded on first use (the option on and
// a context made), each number on its own; one that fails leaves its beats to the click.
const voice = { ctx: null, buffers: new Map(), failed: new Map(), loading: new Set() };

const voiceLog = [];

function decodeAudio(ctx, data) {
  // (the callback form too: Safari before 14.1 returns no promise)
  return new Promise((resolve, reject) => {
    const promise = ctx.decodeAudioData(data, resolve, reject);
    if (promise && typeof promise.catch === 'function') {
      promise.catch(reject);
    }
  });
}

async function loadNumber(ctx, number) {
  try {
    const response = await fetch('/static/voice/' + number + '.wav');
    if (!response.ok) {
      throw new Error('HTTP ' + response.status);
    }
    const buffer = await decodeAudio(ctx, await response.arrayBuffer());
    if (voice.ctx === ctx) {
      voice.buffers.set(number, buffer);
    }
  } catch (err) {
    if (voice.ctx === ctx) {
      voice.failed.set(number, String((err && err.message) || err || 'failed'));
    }
  } finally {
    if (voice.ctx === ctx) {
      voice.loading.delete(number);
    }
  }
}

/** Starts loading the numbers not loaded (again: the ones that failed) into `ctx`. */
function loadVoice(ctx) {
  if (voice.ctx !== ctx) {
    voice.ctx = ctx;
    voice.buffers = new Map();
    voice.failed = new Map();
    voice.loading = new Set();
  }
  for (let number = 1; number <= VOICE_NUMBERS; number += 1) {
    if (!voice.buffers.has(number) && !voice.loading.has(number)) {
      voice.failed.delete(number);
      voice.loading.add(number);
      loadNumber(ctx, number);
    }
  }
}

/** The loaded sample of `number` (null: not loaded, still loading, or failed). */
function voiceBuffer(ctx, number) {
  return voice.ctx === ctx ? voice.buffers.get(number) ?? null : null;
}

/**
 * One spoken number at audio time `when` into `destination`, its onset (the sample's first
 * frame: make_voice trims the silence before the word) on `when`; cut at `when + maxS`
 * when the word is longer. Returns the source node (stopped to cancel it).
 */
export function playVoice(ctx, destination, when, buffer, maxS) {
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  const gain = ctx.createGain();
  gain.gain.value = VOICE_GAIN;
  source.connect(gain).connect(destination);
  const length = Math.min(buffer.duration, maxS);
  if (length < buffer.duration) {
    gain.gain.setValueAtTime(VOICE_GAIN, Math.max(when, when + length - VOICE_FADE_S));
    gain.gain.linearRampToValueAtTime(0, when + length);
  }
  source.start(when);
  source.stop(when + length);
  return source;
}

/** For the hook: what was spoken, and the samples' state. */
export function voiceTimes() {
  return voiceLog.map((entry) => ({ ...entry }));
}

export function voiceInfo() {
  return {
    enabled: comforts.voice,
    loaded: [...voice.buffers.keys()].sort((a, b) => a - b),
    failed: Object.fromEntries(voice.failed),
    loading: [...voice.loading].sort((a, b) => a - b),
  };
}

export function cancelClicks() {
  const ctx = state.audio;
  const now = ctx ? ctx.currentTime : 0;
  stopFuture(state.scheduled, now);
  state.scheduled = [];
  state.scheduledUntil = -Infinity;
  cancelVibrations();
  if (calibration) {
    stopFuture(calibration.scheduled, now);
    calibration.scheduled = [];
    calibration.scheduledUntil = -Infinity; // the ones not yet heard are placed again
  }
}

/**
 * The local instant (performance.now() ms) whose sound the audio thread is rendering now:
 * clicks before it are already in the output (cancelClicks keeps them) or can no longer be on
 * time. Placing starts over from here after clicks are cancelled, so a beat that still sounds
 * is not placed twice, nor one that cannot be on time marked late (it sounds `latency` ms
 * after now: the audio clock's time now is heard that much later).
 */
function renderedUntil(currentAudio, audioMap) {
  return (currentAudio - audioMap) * 1000;
}

export function rescheduleClicks() {
  cancelClicks();
  scheduleClicks();
}

// The slowest tempo (core/validation.py TEMPO_MIN, 20 BPM): a beat is at most this long, so
// looking this far either side of a window finds the beats a subdivision lies between.
const LONGEST_BEAT_MS = 60000 / 20;

/** Server time of `fraction` of the way from `beat` to `next` (its successor). */
function subdivisionTime(timeline, beat, next, fraction) {
  const target = beat.beat + fraction;
  let t = beat.time + (next.time - beat.time) * fraction;
  // one Newton step on the timeline's own beat(t): exact on a tempo ramp too
  t += (target - timeline.beatAt(t)) * 60000 / timeline.tempoAt(t);
  if (!(t > beat.time && t < next.time) || !timeline.isPlayingAt(t) ||
      Math.abs(timeline.beatAt(t) - target) > 1e-3) {
    return null; // a seek or a pause between the two beats: this beat has no subdivisions
  }
  return t;
}

/**
 * The clicks whose grid instants fall in [lo, hi): the timeline's beats and, `perBeat` > 1,
 * the subdivisions of each beat that has a successor (so nothing is placed after a pause).
 */
export function clickEvents(timeline, lo, hi, perBeat) {
  if (perBeat <= 1) {
    return timeline.beatsBetween(lo, hi).map((beat) => ({ ...beat, sub: 0 }));
  }
  const beats = timeline.beatsBetween(lo - LONGEST_BEAT_MS, hi + LONGEST_BEAT_MS);
  const out = [];
  for (let i = 0; i < beats.length; i += 1) {
    const beat = beats[i];
    if (beat.time >= lo && beat.time < hi) {
      out.push({ ...beat, sub: 0 });
    }
    const next = beats[i + 1];
    if (!next || next.beat !== beat.beat + 1 || next.time <= lo || beat.time >= hi) {
      continue;
    }
    for (let j = 1; j < perBeat; j += 1) {
      const time = subdivisionTime(timeline, beat, next, j / perBeat);
      if (time !== null && time >= lo && time < hi) {
        out.push({
          time, beat: beat.beat, inBar: beat.inBar, downbeat: false, countIn: beat.countIn,
          tempo: beat.tempo, sub: j,
        });
      }
    }
  }
  return out.sort((a, b) => a.time - b.time);
}

export function scheduleClicks() {
  if (calibration) {
    scheduleCalibration(); // the band's click rests while the player taps along
    return;
  }
  const ctx = state.audio;
  if (state.clickEnabled && ctx && ctx.state !== 'running') {
    if (performance.now() - lastResume >= AUDIO_RESUME_EVERY_MS) {
      resumeAudio(ctx);
    }
    showClickState();
  }
  const timeline = state.timeline;
  const offset = offsetNow();
  if (!timeline || offset === null || (!state.joined && !state.offline)) {
    return;
  }
  scheduleVibrations(timeline, offset);
  if (!state.clickEnabled || !ctx) {
    return;
  }
  if (comforts.voice && voice.ctx !== ctx) {
    loadVoice(ctx); // (first use: the click on, the option on, a context made)
  }
  const audioMap = readAudioMap(ctx);
  if (audioMap === null) {
    return;
  }
  const perfNow = performance.now();
  const now = perfNow + offset;
  // The window is of play times: a click is sent `nudge` ms before its beat (the output lags
  // by that much), so the beats looked at are the window moved `nudge` later.
  const nudge = state.nudgeMs;
  const currentAudio = ctx.currentTime;
  const resumeAt = state.scheduledUntil === -Infinity
    ? renderedUntil(currentAudio, audioMap) + offset : state.scheduledUntil;
  const from = Math.max(now, resumeAt, (state.lockAt ?? -Infinity) - nudge);
  const to = now + LOOKAHEAD_MS;
  if (from >= to) {
    return;
  }
  state.scheduled = state.scheduled.filter((item) => item.audioTime > currentAudio - 0.1);
  const perBeat = SUBDIVISIONS[comforts.subdivision] || 1;
  for (const event of clickEvents(timeline, from + nudge, to + nudge, perBeat)) {
    const playServerTime = event.time - nudge;
    const audioTime = (playServerTime - offset) / 1000 + audioMap;
    const accent = comforts.accent && event.downbeat && event.sub === 0;
    const entry = {
      beat: event.beat,
      inBar: event.inBar,
      kind: event.sub ? 'sub' : 'beat',
      sub: event.sub,
      beatServerTime: event.time,
      playServerTime,
      audioTime,
      downbeat: event.downbeat && event.sub === 0,
      accent,
      countIn: event.countIn,
      nudgeMs: nudge,
      sound: comforts.sound,
      peak: null,
      volume: comforts.volume,
      cancelled: false,
      late: audioTime < currentAudio,
      audioClock: clock.source,
      audioMap,
      audioLatency: clock.latency.s,
      audioLatencyKind: clock.latency.kind,
      audioAnchored: clock.anchor !== null,
      audioReading: clock.raw,
      audioReadings: readingsSummary(clock.readings),
      spoken: null,
      unspoken: null,
    };
    const said = comforts.voice && event.countIn && event.sub === 0
      ? speakCountIn(ctx, timeline, event, entry) : null;
    if (!entry.late && !said) {
      const voiceOf = { sound: comforts.sound, accent, sub: event.sub > 0 };
      const { node, peak } = playClick(ctx, master, audioTime, voiceOf);
      entry.peak = peak;
      state.scheduled.push({ audioTime, node, entry });
    }
    state.clickLog.push(entry);
    if (state.clickLog.length > CLICK_LOG) {
      state.clickLog.shift();
    }
  }
  state.scheduledUntil = to;
}

/**
 * The count-in beat of click `entry` spoken instead of clicked, at the click's instant: the
 * same time mapping, latency and lateness. Returns whether a word takes the beat; false (the
 * click plays) for a beat the call leaves to the click and for a number whose sample is not
 * loaded (still loading, or failed: never silence).
 */
function speakCountIn(ctx, timeline, event, entry) {
  const segment = timeline.segmentAt(event.time);
  const beatsLeft = Math.round((segment.anchor - event.time) / segment.beatMs);
  const number = countInWord(beatsLeft, event.inBar, segment.beatsPerBar);
  if (number === null) {
    return false;
  }
  const buffer = voiceBuffer(ctx, number);
  if (buffer === null) {
    entry.unspoken = number;
    return false;
  }
  entry.spoken = number;
  const spoken = {
    number,
    beat: event.beat,
    inBar: event.inBar,
    beatsLeft,
    beatServerTime: entry.beatServerTime,
    playServerTime: entry.playServerTime,
    audioTime: entry.audioTime,
    nudgeMs: entry.nudgeMs,
    durationS: buffer.duration,
    lengthS: Math.min(buffer.duration, segment.beatMs / 1000),
    late: entry.late,
    cancelled: false,
    audioMap: entry.audioMap,
  };
  if (!entry.late) {
    const node = playVoice(ctx, master, entry.audioTime, buffer, segment.beatMs / 1000);
    state.scheduled.push({ audioTime: entry.audioTime, node, entry: spoken, spoken: entry });
  }
  voiceLog.push(spoken);
  if (voiceLog.length > CLICK_LOG) {
    voiceLog.shift();
  }
  return true;
}

export function setClick(enabled) {
  state.clickEnabled = enabled;
  save(STORE.click, enabled);
  el.clickToggle.setAttribute('aria-pressed', String(enabled));
  if (enabled) {
    const ctx = ensureAudio();
    if (ctx && ctx.state !== 'running') {
      resumeAudio(ctx); // within the gesture, as the autoplay policies want
    }
    rescheduleClicks();
  } else {
    cancelClicks();
  }
  showClickState();
}

// -- the latency (the nudge) and the console's view of it ------------------------------------

// A change reaches the console this soon (the next periodic report is up to 5 s away); a
// run of taps on − / + sends one report.
export const REPORT_AFTER_CHANGE_MS = 400;

let reportTimer = null;

function reportSoon() {
  window.clearTimeout(reportTimer);
  reportTimer = window.setTimeout(reportSync, REPORT_AFTER_CHANGE_MS);
}

/** The output latency in force (ms, positive: the click is sent that much early), kept for
 * the output the player chose. A change is reported soon; the same value (the page's start)
 * is not: the first report waits for the join's clock-sync burst. */
export function setNudge(value) {
  const previous = state.nudgeMs;
  state.nudgeMs = clampNudge(value);
  comforts.outputDelays[comforts.output] = state.nudgeMs;
  saveComfort('outputDelays', comforts.outputDelays);
  setText(el.nudgeValue, formatDelay(state.nudgeMs));
  el.nudgeDown.disabled = state.nudgeMs <= NUDGE_MIN;
  el.nudgeUp.disabled = state.nudgeMs >= NUDGE_MAX;
  refreshSheet();
  rescheduleClicks();
  if (state.nudgeMs !== previous) {
    reportSoon();
  }
}

/** What sync_report carries of the output: its latency and which output it is. */
export function outputReport() {
  return { outputDelayMs: state.nudgeMs, output: comforts.output };
}

// -- the sheet's choices ---------------------------------------------------------------------

export function vibrationSupported() {
  return typeof navigator.vibrate === 'function';
}

let outputChanged = false;

const outputShown = { footer: $('nudge-label'), calibration: $('cal-output') };

function refreshSheet() {
  showComforts(comforts, vibrationSupported());
  // which output the latency in force is for: beside − / + and over the calibration
  setText(outputShown.footer, OUTPUTS[comforts.output] + ' latency');
  setText(outputShown.calibration, OUTPUTS[comforts.output]);
  const notes = [];
  if (outputChanged) {
    notes.push('An audio output came or went: pick the one you hear and check its latency.');
  }
  if (!vibrationSupported()) {
    notes.push('This browser cannot vibrate (no browser on an iPhone or iPad can).');
  }
  showSheetNote(notes.join(' '));
}

function choose(key, value) {
  comforts[key] = value;
  saveComfort(key, value);
  refreshSheet();
  rescheduleClicks();
}

export function setSound(sound) {
  if (SOUNDS[sound]) {
    choose('sound', sound);
  }
}

export function setVolume(volume) {
  comforts.volume = clampVolume(volume);
  saveComfort('volume', comforts.volume);
  if (master) {
    master.gain.value = volumeGain(comforts.volume); // clicks already placed follow at once
  }
  refreshSheet();
}

export function setSubdivision(subdivision) {
  if (SUBDIVISIONS[subdivision]) {
    choose('subdivision', subdivision);
  }
}

export function setAccent(accent) {
  choose('accent', Boolean(accent));
}

export function setVibrate(vibrate) {
  choose('vibrate', Boolean(vibrate) && vibrationSupported());
}

/** The spoken count-in: its samples load with the first context (now, if there is one). */
export function setVoice(enabled) {
  if (enabled && state.audio) {
    loadVoice(state.audio);
  }
  choose('voice', Boolean(enabled));
}

/** The output the player hears: its own latency comes back with it. */
export function setOutput(output) {
  if (!OUTPUTS[output]) {
    return;
  }
  outputChanged = false;
  const changed = output !== comforts.output;
  comforts.output = output;
  saveComfort('output', output);
  setNudge(comforts.outputDelays[output]);
  if (changed) {
    reportSoon(); // the console shows the output too, whether or not the latency moved
  }
}

// -- vibration on the beat ------------------------------------------------------------------

// A pulse on each beat, longer on an accented downbeat. Vibration is the phone's own motor,
// not the audio output, so it is on the beat itself: the latency does not move it.
export const VIBRATE_BEAT_MS = 30;

export const VIBRATE_ACCENT_MS = 60;

const pendingVibrations = new Map();

const vibrations = [];

let vibratedUntil = -Infinity;

function cancelVibrations() {
  for (const [timer, entry] of pendingVibrations) {
    window.clearTimeout(timer);
    entry.cancelled = true;
  }
  pendingVibrations.clear();
  vibratedUntil = -Infinity;
}

/** Timers for the beats of the next LOOKAHEAD_MS, each set from the timeline's instant (a
 * timer only says when to call the motor; nothing is counted from it). */
function scheduleVibrations(timeline, offset) {
  if (!comforts.vibrate || !vibrationSupported()) {
    return;
  }
  const perfNow = performance.now();
  const now = perfNow + offset;
  const from = Math.max(now, vibratedUntil, state.lockAt ?? -Infinity);
  const to = now + LOOKAHEAD_MS;
  if (from >= to) {
    return;
  }
  for (const beat of timeline.beatsBetween(from, to)) {
    const accent = comforts.accent && beat.downbeat;
    const entry = {
      beat: beat.beat,
      beatServerTime: beat.time,
      dueLocal: beat.time - offset,
      calledAt: null,
      pulseMs: accent ? VIBRATE_ACCENT_MS : VIBRATE_BEAT_MS,
      accent,
      cancelled: false,
    };
    const timer = window.setTimeout(() => {
      pendingVibrations.delete(timer);
      entry.calledAt = performance.now();
      navigator.vibrate(entry.pulseMs);
    }, Math.max(0, entry.dueLocal - perfNow));
    pendingVibrations.set(timer, entry);
    vibrations.push(entry);
    if (vibrations.length > CLICK_LOG) {
      vibrations.shift();
    }
  }
  vibratedUntil = to;
}

// -- tap-along calibration ------------------------------------------------------------------

// The page's own grid: slow enough that a lag of up to the nudge's +400 ms cannot be taken
// for an early tap on the next beat (calibrate.js), a bar to listen, then three to tap.
export const CALIBRATION_BPM = 100;

export const CALIBRATION_LISTEN_BEATS = 4;

export const CALIBRATION_TAP_BEATS = 12;

// The grid starts this long after the audio clock is ready (a click cannot be placed sooner
// than the scheduler's look-ahead), and the run ends this long after its last beat (a tap
// lagging by up to a beat's length still counts).
export const CALIBRATION_LEAD_MS = 300;

const cal = {
  root: $('calibrate'),
  tap: $('cal-tap'),
  status: $('cal-status'),
  result: $('cal-result'),
  accept: $('cal-accept'),
  again: $('cal-again'),
  cancel: $('cal-cancel'),
};

/** The run under way (null when the panel is closed). */
let calibration = null;

function calibrationText(result) {
  const output = OUTPUTS[comforts.output];
  switch (result.reason) {
    case null:
      return 'Your taps came ' + formatDelay(result.offsetMs) + ' after the click (spread ' +
        result.spreadMs + ' ms, ' + result.taps + ' taps). Accept sets the ' + output +
        ' latency to ' + formatDelay(result.offsetMs) + '.';
    case 'few':
      return 'Only ' + result.taps + ' of ' + CALIBRATION_TAP_BEATS + ' clicks were tapped: ' +
        'at least ' + calibrate.MIN_TAPS + ' are needed. Try again, tapping on every click.';
    case 'spread':
      return 'Your taps spread over ' + result.spreadMs + ' ms (at most ' +
        calibrate.MAX_SPREAD_MS + ' ms for a setting to trust). Try again, tapping with the ' +
        'click as steadily as you can.';
    default:
      return 'Your taps came ' + formatDelay(result.offsetMs) + ' after the click: more than ' +
        'the latency can take back (' + formatDelay(NUDGE_MIN) + ' to ' +
        formatDelay(NUDGE_MAX) + '). Check the output and try again.';
  }
}

export function startCalibration() {
  closeSheet();
  const ctx = ensureAudio();
  if (ctx && ctx.state !== 'running') {
    resumeAudio(ctx); // within the gesture that pressed Calibrate
  }
  cancelClicks();
  calibration = {
    phase: 'waiting',
    beatMs: 60000 / CALIBRATION_BPM,
    beats: [],
    tapBeats: [],
    taps: [],
    scheduled: [],
    placed: [],
    scheduledUntil: -Infinity,
    result: null,
    startedAt: performance.now(),
  };
  cal.root.hidden = false;
  cal.result.hidden = true;
  cal.accept.hidden = true;
  cal.again.hidden = true;
  cal.tap.disabled = false;
  setText(cal.status, 'Get ready…');
  cal.tap.focus();
}

function closeCalibration() {
  if (!calibration) {
    return;
  }
  const ctx = state.audio;
  stopFuture(calibration.scheduled, ctx ? ctx.currentTime : 0);
  calibration = null;
  cal.root.hidden = true;
  rescheduleClicks(); // the band's click again
  el.clickToggle.focus();
}

function acceptCalibration() {
  const result = calibration && calibration.result;
  if (result && result.ok) {
    closeCalibration();
    setNudge(result.offsetMs);
  }
}

function scheduleCalibration() {
  const run = calibration;
  const ctx = state.audio;
  if (run.phase === 'done' || !ctx) {
    return;
  }
  if (ctx.state !== 'running') {
    if (performance.now() - lastResume >= AUDIO_RESUME_EVERY_MS) {
      resumeAudio(ctx);
    }
    if (performance.now() - run.startedAt > AUDIO_START_MS) {
      setText(cal.status, 'No sound: the browser has not started audio. Check the output.');
    }
    return;
  }
  const audioMap = readAudioMap(ctx);
  if (audioMap === null) {
    return;
  }
  const perfNow = performance.now();
  if (run.phase === 'waiting') {
    run.beats = calibrate.grid(perfNow + CALIBRATION_LEAD_MS, run.beatMs,
      CALIBRATION_LISTEN_BEATS + CALIBRATION_TAP_BEATS);
    run.tapBeats = run.beats.slice(CALIBRATION_LISTEN_BEATS);
    run.phase = 'listening';
    setText(cal.status, 'Listen…');
  }
  const currentAudio = ctx.currentTime;
  const resumeAt = run.scheduledUntil === -Infinity
    ? renderedUntil(currentAudio, audioMap) : run.scheduledUntil;
  const from = Math.max(perfNow, resumeAt);
  const to = perfNow + LOOKAHEAD_MS;
  run.beats.forEach((local, index) => {
    if (local >= from && local < to) {
      // the latency is left out: the taps measure all of it
      const audioTime = local / 1000 + audioMap;
      const voice = { sound: comforts.sound, accent: index % 4 === 0, sub: false };
      const { node } = playClick(ctx, master, audioTime, voice);
      const entry = { local, audioTime, audioMap, cancelled: false };
      run.scheduled.push({ audioTime, node, entry });
      run.placed.push(entry);
    }
  });
  run.scheduled = run.scheduled.filter((item) => item.audioTime > currentAudio - 0.1);
  run.scheduledUntil = to;
  if (run.phase === 'listening' && perfNow >= run.tapBeats[0] - run.beatMs / 2) {
    run.phase = 'tapping';
    setText(cal.status, 'Tap with the click');
  }
  if (perfNow > run.beats[run.beats.length - 1] + run.beatMs) {
    finishCalibration(run);
  }
}

function finishCalibration(run) {
  run.phase = 'done';
  run.result = calibrate.assess(run.taps, run.tapBeats, run.beatMs);
  cal.tap.disabled = true;
  setText(cal.status, run.result.ok ? 'Done' : 'Not steady enough');
  setText(cal.result, calibrationText(run.result));
  cal.result.dataset.ok = String(run.result.ok);
  cal.result.hidden = false;
  cal.accept.hidden = !run.result.ok;
  cal.again.hidden = false;
  (run.result.ok ? cal.accept : cal.again).focus();
}

/** A tap's instant on the local clock: the event's own stamp (taken when the finger landed,
 * before the page got to it), unless the engine's stamp is not in performance.now()'s base. */
function tapTime(event) {
  const now = performance.now();
  const stamp = event.timeStamp;
  return Number.isFinite(stamp) && stamp > 0 && stamp <= now + 1 && now - stamp < 1000
    ? stamp : now;
}

function recordTap(event) {
  const run = calibration;
  if (!run || (run.phase !== 'listening' && run.phase !== 'tapping')) {
    return;
  }
  run.taps.push(tapTime(event));
  if (run.phase === 'tapping') {
    setText(cal.status, 'Tap with the click · ' + run.taps.length);
  }
}

export function calibrationInfo() {
  const run = calibration;
  if (!run) {
    return null;
  }
  return {
    phase: run.phase,
    beatMs: run.beatMs,
    beats: [...run.beats],
    tapBeats: [...run.tapBeats],
    taps: [...run.taps],
    placed: run.placed.map((entry) => ({ ...entry })),
    result: run.result && { ...run.result, differences: [...run.result.differences] },
    message: cal.result.hidden ? null : cal.result.textContent,
  };
}

// -- wiring ---------------------------------------------------------------------------------

/** The audio clock as the map sees it, for the hook: how many times it stalled, whether it
 * is stalled now, whether clicks can be placed (docs/follower-page.md). */
export function audioClockInfo() {
  return { stalls, stalled: clock !== null && clock.stalled, mapped: state.audioMap !== null };
}

/** The hook's view of the comforts (docs/follower-page.md). */
export function comfortsInfo() {
  return {
    sound: comforts.sound,
    volume: comforts.volume,
    accent: comforts.accent,
    subdivision: comforts.subdivision,
    vibrate: comforts.vibrate,
    vibrationSupported: vibrationSupported(),
    voice: comforts.voice,
    output: comforts.output,
    outputDelays: { ...comforts.outputDelays },
    outputGain: master ? master.gain.value : null,
    sheetOpen: sheetOpen(),
    calibrating: calibration !== null,
  };
}

export function vibrationLog() {
  return vibrations.map((entry) => ({ ...entry }));
}

/** Wires the settings sheet and the calibration; the latency in force is the chosen output's. */
export function initComforts() {
  state.nudgeMs = comforts.outputDelays[comforts.output];
  if (!vibrationSupported()) {
    comforts.vibrate = false;
  }
  bindSheet({
    sound: setSound,
    volume: setVolume,
    subdivision: setSubdivision,
    accent: setAccent,
    vibrate: setVibrate,
    voice: setVoice,
    output: setOutput,
    calibrate: startCalibration,
  });
  // pointerdown, not click: a click fires when the finger lifts, tens of ms after the tap
  cal.tap.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    recordTap(event);
  });
  document.addEventListener('keydown', (event) => {
    if (!calibration) {
      return;
    }
    if (event.key === 'Escape') {
      event.preventDefault();
      closeCalibration();
    } else if (event.key !== 'Tab' && calibration.phase !== 'done') {
      event.preventDefault(); // any key taps (and does not press a focused button)
      if (!event.repeat) {
        recordTap(event);
      }
    }
  }, true);
  cal.accept.addEventListener('click', acceptCalibration);
  cal.again.addEventListener('click', startCalibration);
  cal.cancel.addEventListener('click', closeCalibration);
  // Secure contexts only (https, localhost): an output plugged in or out. No engine says which
  // output plays (AudioContext.sinkId stays '' for the default, whatever it is), so the page
  // asks the player to pick it.
  const devices = navigator.mediaDevices;
  if (devices && typeof devices.addEventListener === 'function') {
    devices.addEventListener('devicechange', () => {
      outputChanged = true;
      flagSheet();
      refreshSheet();
    });
  }
  refreshSheet();
}

/** Closes the sheet and any calibration (the page goes back to the join form). */
export function closeComforts() {
  closeSheet();
  closeCalibration();
}
