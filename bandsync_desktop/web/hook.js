/*
 * The read-only test hook window.bandsync (docs/follower-page.md).
 */

import {
  audioClockInfo, calibrationInfo, comfortsInfo, vibrationLog, voiceInfo, voiceTimes,
} from './audio.js';
import { offsetNow, serverNow } from './clock.js';
import { formInfo } from './form.js';
import { setlistInfo } from './setlist.js';
import { state } from './state.js';

export function exposeHook() {
  const hook = {};
  const getters = {
    connected: () => state.connected && state.joined,
    socketConnected: () => state.connected,
    joined: () => state.joined,
    sessionId: () => state.sessionId,
    displayName: () => state.displayName,
    clientId: () => state.clientId,
    role: () => state.role,
    memberId: () => state.memberId,
    leading: () => state.leading,
    offline: () => state.offline,
    chartLine: () => state.chartCurrent,
    chartSize: () => state.chartShownSize,
    alone: () => state.alone,
    version: () => (Number.isFinite(state.version) ? state.version : null),
    offsetMs: () => offsetNow(),
    offsetUncertaintyMs: () => state.estimator.uncertainty(performance.now()),
    rttMs: () => state.estimator.rtt(performance.now()),
    syncSampleCount: () => state.syncSamples,
    tempoBpm: () => (state.timeline ? state.timeline.tempoAt(serverNow() ?? 0) : null),
    beatsPerBar: () => (state.timeline ? state.timeline.segmentAt(serverNow() ?? 0).beatsPerBar : null),
    isPlaying: () => (state.timeline ? state.timeline.isPlayingAt(serverNow() ?? 0) : false),
    countingIn: () => (state.timeline ? state.timeline.countingInAt(serverNow() ?? 0) : false),
    lockedIn: () => state.joined && !state.needsLock && state.lockAt === null,
    lockAt: () => state.lockAt,
    nudgeMs: () => state.nudgeMs,
    clickEnabled: () => state.clickEnabled,
    comforts: () => comfortsInfo(),
    calibration: () => calibrationInfo(),
    voice: () => voiceInfo(),
    audioState: () => (state.audio ? state.audio.state : null),
    audioTime: () => (state.audio ? state.audio.currentTime : null),
    audioClock: () => audioClockInfo(),
    lastError: () => (state.lastError ? { ...state.lastError } : null),
    lastSnapshot: () => state.lastSnapshotInfo,
  };
  for (const [name, get] of Object.entries(getters)) {
    Object.defineProperty(hook, name, { get, enumerable: true });
  }
  const at = (t) => (t === undefined ? serverNow() : t);
  hook.serverNow = () => serverNow();
  hook.positionMs = (t) => {
    const when = at(t);
    return state.timeline && when !== null ? state.timeline.positionAt(when) : null;
  };
  hook.beat = (t) => {
    const when = at(t);
    return state.timeline && when !== null ? state.timeline.beatAt(when) : null;
  };
  hook.barBeat = (t) => {
    const when = at(t);
    return state.timeline && when !== null ? state.timeline.barBeatAt(when) : null;
  };
  hook.form = () => formInfo();
  hook.setlist = () => setlistInfo();
  hook.segments = () => (state.timeline ? state.timeline.segments.map((s) => ({ ...s })) : []);
  hook.clickTimes = () => state.clickLog.map((entry) => ({ ...entry }));
  hook.vibrations = () => vibrationLog();
  hook.voiceTimes = () => voiceTimes();
  hook.timelineLog = () => state.timelineLog.map((entry) => ({ ...entry, starts: [...entry.starts] }));
  Object.freeze(hook);
  Object.defineProperty(window, 'bandsync', { value: hook, writable: false, configurable: false });
}
