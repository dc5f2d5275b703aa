/*
 * Audio: the click, scheduled on the audio clock from the timeline, and the timing nudge.
 */

import { offsetNow } from './clock.js';
import { el, setText } from './dom.js';
import { clampNudge, save, STORE } from './settings.js';
import { state } from './state.js';

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

// The map is this quantile of the readings in the window: their median. Buffer steps make
// the readings a staircase (Firefox: ~20 ms steps, readings spread evenly over a step), and
// an engine's clock leaps ahead for a reading or two now and then (WebKitGTK on PulseAudio:
// +45 ms, about one reading in ten) or stalls for a while (an underrun, then it catches up).
// The median sits mid-step, moved by neither; the top of the staircase would be moved by the
// leaps.
export const AUDIO_MAP_QUANTILE = 0.5;

// Before the map is trusted it needs this many readings over at least this span, and the
// older and newer halves of them must agree: an audio clock that has just started runs
// unevenly while the output fills its buffer (WebKitGTK on PulseAudio: its readings slid by
// ~200 ms over the first quarter second, then held still).
export const AUDIO_MAP_SETTLE_READINGS = 6;

export const AUDIO_MAP_SETTLE_MS = 300;

// The audio clock itself moved (output device changed, the context stalled for good): the
// last JUMP_READINGS readings all lie this far from the map on one side and agree among
// themselves to within AUDIO_MAP_JUMP_SPREAD_S (a stall's readings slide instead). The map
// starts over from them.
export const AUDIO_MAP_JUMP_S = 0.05;

export const AUDIO_MAP_JUMP_SPREAD_S = 0.04;

export const AUDIO_MAP_JUMP_READINGS = 8;

// Clicks already placed stay where they are until the map has been further than this from
// the one they were placed with for AUDIO_MAP_MOVE_MS (a burst of leaps or a stall and its
// catching up pass sooner); then the ones not yet heard are placed again.
export const AUDIO_MAP_TOLERANCE_S = 0.002;

export const AUDIO_MAP_MOVE_MS = 300;

// A stamp from getOutputTimestamp() is about the sample leaving the speaker now: one whose
// performanceTime is further than this from performance.now() is not in that time base.
export const OUTPUT_STAMP_MAX_SKEW_MS = 250;

// The filter's state, for the one AudioContext the page has (state.audio).
let clock = null;

function freshClock(ctx, stampBroken) {
  return { ctx, readings: [], stampBroken, held: null, movedSince: null, source: null };
}

/**
 * One reading of the audio clock against the local clock, in seconds: contextTime (s) minus
 * perfMs / 1000, where contextTime is the sample heard at perfMs. getOutputTimestamp() pairs
 * the two directly (Chromium: good to ~0.1 ms). Some engines' stamps are not usable: WebKitGTK
 * 2.50's performanceTime runs ahead of performance.now() by the context's age, and Firefox's is
 * currentTime less the latency, stepping by buffers. A stamp that is not about "now" marks the
 * context's stamps broken for good; then currentTime less the output latency is read instead.
 * Returns null when no reading can be had yet (the first audio callback has not run).
 */
function readClock(ctx, perfNow) {
  if (!clock.stampBroken && typeof ctx.getOutputTimestamp === 'function') {
    const stamp = ctx.getOutputTimestamp();
    if (!stamp || !(stamp.performanceTime > 0) || !(stamp.contextTime > 0)) {
      return null; // the first audio callback has not run yet: try again next tick
    }
    if (Math.abs(stamp.performanceTime - perfNow) <= OUTPUT_STAMP_MAX_SKEW_MS &&
        stamp.contextTime <= ctx.currentTime + 0.001) {
      return { value: stamp.contextTime - stamp.performanceTime / 1000, source: 'outputTimestamp' };
    }
    clock = freshClock(ctx, true); // readings taken from the bad stamps go with them
  }
  if (!(ctx.currentTime > 0)) {
    return null;
  }
  const latency = ctx.outputLatency || ctx.baseLatency || 0;
  return { value: ctx.currentTime - latency - perfNow / 1000, source: 'currentTime' };
}

/**
 * The audio clock against the local clock: contextTime (s) = perfMs / 1000 + map.
 *
 * Every engine but Chromium moves the audio clock in buffer steps (tens of ms in Firefox) and
 * coarsens performance.now() to ~1 ms, so single readings scatter far more than a click may be
 * off; the map is the median of the readings over a sliding window (see
 * AUDIO_MAP_QUANTILE). A jump of the clock itself starts the map over, and so does a context
 * that stops running. The map the clicks were placed with is held until the estimate moves
 * beyond the tolerance; then the clicks not yet heard are placed again.
 * Returns null while the audio clock is not running or its map has not settled yet.
 */
export function readAudioMap(ctx) {
  if (!clock || clock.ctx !== ctx) {
    clock = freshClock(ctx, false);
  }
  if (ctx.state !== 'running') {
    clock = freshClock(ctx, clock.stampBroken);
    state.audioMap = null;
    return null;
  }
  const perfNow = performance.now();
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
  if (clock.held === null && !settled(readings, perfNow)) {
    state.audioMap = null;
    return null;
  }
  const map = quantile(readings.map((r) => r.value), AUDIO_MAP_QUANTILE);
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
      AUDIO_MAP_TOLERANCE_S;
}

export function playClick(ctx, when, accent) {
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.frequency.value = accent ? 1760 : 1175;
  gain.gain.setValueAtTime(0, when);
  gain.gain.linearRampToValueAtTime(accent ? 0.9 : 0.6, when + 0.001);
  gain.gain.exponentialRampToValueAtTime(0.001, when + 0.04);
  osc.connect(gain).connect(ctx.destination);
  osc.start(when);
  osc.stop(when + 0.05);
  return osc;
}

export function cancelClicks() {
  const ctx = state.audio;
  const now = ctx ? ctx.currentTime : 0;
  for (const item of state.scheduled) {
    if (item.audioTime > now) {
      try {
        item.node.stop();
        item.node.disconnect();
      } catch (err) {
        /* already stopped */
      }
      item.entry.cancelled = true;
    }
  }
  state.scheduled = [];
  state.scheduledUntil = -Infinity;
}

export function rescheduleClicks() {
  cancelClicks();
  scheduleClicks();
}

export function scheduleClicks() {
  const ctx = state.audio;
  if (state.clickEnabled && ctx && ctx.state !== 'running') {
    if (performance.now() - lastResume >= AUDIO_RESUME_EVERY_MS) {
      resumeAudio(ctx);
    }
    showClickState();
  }
  const timeline = state.timeline;
  const offset = offsetNow();
  if (!state.clickEnabled || !ctx || !timeline || offset === null ||
      (!state.joined && !state.offline)) {
    return;
  }
  const audioMap = readAudioMap(ctx);
  if (audioMap === null) {
    return;
  }
  const perfNow = performance.now();
  const now = perfNow + offset;
  const from = Math.max(now, state.scheduledUntil, state.lockAt ?? -Infinity);
  const to = now + LOOKAHEAD_MS;
  if (from >= to) {
    return;
  }
  const currentAudio = ctx.currentTime;
  state.scheduled = state.scheduled.filter((item) => item.audioTime > currentAudio - 0.1);
  for (const beat of timeline.beatsBetween(from, to)) {
    const playServerTime = beat.time + state.nudgeMs;
    const audioTime = (playServerTime - offset) / 1000 + audioMap;
    const entry = {
      beat: beat.beat,
      inBar: beat.inBar,
      beatServerTime: beat.time,
      playServerTime,
      audioTime,
      accent: beat.downbeat,
      countIn: beat.countIn,
      nudgeMs: state.nudgeMs,
      cancelled: false,
      late: audioTime < currentAudio,
      audioClock: clock.source,
      audioMap,
    };
    if (!entry.late) {
      const node = playClick(ctx, audioTime, beat.downbeat);
      state.scheduled.push({ audioTime, node, entry });
    }
    state.clickLog.push(entry);
    if (state.clickLog.length > CLICK_LOG) {
      state.clickLog.shift();
    }
  }
  state.scheduledUntil = to;
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

export function setNudge(value) {
  state.nudgeMs = clampNudge(value);
  save(STORE.nudge, state.nudgeMs);
  const sign = state.nudgeMs > 0 ? '+' : '';
  setText(el.nudgeValue, sign + state.nudgeMs + ' ms');
  rescheduleClicks();
}
