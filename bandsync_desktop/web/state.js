/*
 * The page's one mutable state object, and the pure libraries it computes with
 * (sync.js and chartmap.js, classic scripts loaded before the modules).
 */

import { clampNudge, load, stableClientId, STORE } from './settings.js';

export const core = window.BandSyncCore;

export const chartMath = window.BandSyncChart;

export const state = {
  socket: null,
  connected: false,
  joined: false,
  wantJoined: false,
  removed: false,
  sessionId: null,
  displayName: null,
  clientId: stableClientId(),
  memberId: null,
  leading: false,
  offline: false,
  role: null,
  version: -Infinity,
  snapshot: null,
  timeline: null,
  estimator: new core.OffsetEstimator(),
  freshEstimator: null,
  pendingSync: new Map(),
  syncSamples: 0,
  lockAt: null,
  needsLock: true,
  nudgeMs: clampNudge(load(STORE.nudge, '0')),
  clickEnabled: load(STORE.click, 'false') === 'true',
  audio: null,
  audioMap: null,
  audioMapSteady: 0,
  scheduledUntil: -Infinity,
  scheduled: [],
  clickLog: [],
  wakeLock: null,
  wakeLockPending: false,
  lastError: null,
  lastSnapshotInfo: null,
  timelineLog: [],
  chartLines: [],
  chartMap: null,
  chartCurrent: -1,
  chartSize: 22,
  chartShownSize: 22,
  alone: false,
  leaveArmedUntil: 0,
  leaveTimer: null,
  bannerTimer: null,
  timers: [],
};
