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
  return state.audio;
}

/**
 * The audio clock against the local clock: contextTime (s) = perfMs / 1000 + audioMap.
 * getOutputTimestamp() pairs the sample now leaving the speaker with the instant it does,
 * so the map includes the output latency. Readings jitter with the audio callback, so they
 * are smoothed; a jump (device change, resume) resets the map. Without getOutputTimestamp
 * the map comes from currentTime and outputLatency (coarser: currentTime moves by buffers).
 * Returns null while the audio clock is not running or its map has not settled yet.
 */
export function readAudioMap(ctx) {
  if (ctx.state !== 'running') {
    return null;
  }
  let reading = null;
  if (typeof ctx.getOutputTimestamp === 'function') {
    const stamp = ctx.getOutputTimestamp();
    if (!stamp || !(stamp.performanceTime > 0) || !(stamp.contextTime > 0)) {
      return null; // the first audio callback has not run yet: try again next tick
    }
    reading = stamp.contextTime - stamp.performanceTime / 1000;
  } else {
    const latency = ctx.outputLatency || ctx.baseLatency || 0;
    reading = ctx.currentTime - latency - performance.now() / 1000;
  }
  const map = state.audioMap;
  if (map === null || Math.abs(reading - map) > 0.002) {
    // First reading, or the map moved (output starting up, device change): start over and
    // wait for it to settle before trusting it; clicks already placed by the old map go.
    state.audioMap = reading;
    state.audioMapSteady = 0;
    if (map !== null && state.scheduled.length) {
      cancelClicks();
    }
    return null;
  }
  state.audioMap = map + (reading - map) * 0.05;
  state.audioMapSteady += 1;
  return state.audioMapSteady >= 3 ? state.audioMap : null;
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
  setText(el.clickToggle, enabled ? 'Click on' : 'Click off');
  if (enabled) {
    const ctx = ensureAudio();
    if (ctx && ctx.state !== 'running') {
      ctx.resume().catch(() => {});
    }
    rescheduleClicks();
  } else {
    cancelClicks();
  }
}

export function setNudge(value) {
  state.nudgeMs = clampNudge(value);
  save(STORE.nudge, state.nudgeMs);
  const sign = state.nudgeMs > 0 ? '+' : '';
  setText(el.nudgeValue, sign + state.nudgeMs + ' ms');
  rescheduleClicks();
}
