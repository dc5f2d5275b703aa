/*
 * Clock sync: the clock_sync exchanges, their schedule and the sync reports to the console.
 */

import { outputReport, rescheduleClicks } from './audio.js';
import { core, state } from './state.js';
import { updateConnection } from './view.js';

export const BURST_AT_JOIN = 16;

export const BURST_GAP_MS = 50;

// After the join burst, one exchange every half second: under the estimator's 100 ppm age
// rule a sample is worth keeping for ~10-20 s, and a busy Wi-Fi link needs ~20 samples in
// that span for one to be fast both ways (docs/timing.md measured 4 per 10 s: not enough).
export const PERIODIC_EVERY_MS = 500;

export const PERIODIC_SAMPLES = 1;

export const PERIODIC_GAP_MS = 0;

export const REPORT_EVERY_MS = 5000;

export const SYNC_TIMEOUT_MS = 3000;

/** A clock estimate that moves by more than this re-places the clicks already scheduled. */
export const RESCHEDULE_SHIFT_MS = 1;

export function offsetNow() {
  return state.estimator.offset(performance.now());
}

export function serverNow() {
  const offset = offsetNow();
  return offset === null ? null : performance.now() + offset;
}

export function onClockSync(reply) {
  const t3 = performance.now();
  if (!reply || typeof reply.t0 !== 'number') {
    return;
  }
  const pending = state.pendingSync.get(reply.t0);
  if (!pending) {
    return; // an answer to a request of an older connection, or a duplicate
  }
  state.pendingSync.delete(reply.t0);
  let sample;
  try {
    sample = core.makeSample(reply.t0, reply.t1, reply.t2, t3);
  } catch (err) {
    return;
  }
  const before = offsetNow();
  pending.estimator.add(sample);
  if (pending.estimator === state.freshEstimator) {
    // The first answer after a reconnect replaces the old server's clock estimate.
    state.estimator = state.freshEstimator;
    state.freshEstimator = null;
  }
  const after = offsetNow();
  if (before !== null && after !== null && Math.abs(after - before) > RESCHEDULE_SHIFT_MS) {
    // The clock moved (the first answer after a sleep that stopped the phone's clock, or
    // after a reconnect): the clicks already placed would sound off the beat.
    rescheduleClicks();
  }
  state.syncSamples += 1;
  if (state.estimator.size === 1) {
    updateConnection(); // "Syncing…" turns to "In sync" at once, not at the next refresh
  }
}

export function syncOnce() {
  const socket = state.socket;
  if (!socket || !socket.connected) {
    return;
  }
  const t0 = performance.now();
  const estimator = state.freshEstimator || state.estimator;
  state.pendingSync.set(t0, { estimator });
  window.setTimeout(() => state.pendingSync.delete(t0), SYNC_TIMEOUT_MS);
  socket.emit('clock_sync', { t0 });
}

export function burst(count, gapMs) {
  for (let i = 0; i < count; i += 1) {
    window.setTimeout(syncOnce, i * gapMs);
  }
}

export function reportSync() {
  const socket = state.socket;
  const local = performance.now();
  const offset = state.estimator.offset(local);
  if (!socket || !socket.connected || !state.joined || offset === null) {
    return;
  }
  socket.emit('sync_report', {
    rttMs: state.estimator.rtt(local),
    offsetMs: offset,
    uncertaintyMs: state.estimator.uncertainty(local),
    ...outputReport(), // outputDelayMs, output: the console shows e.g. "BT +220 ms"
  });
}
