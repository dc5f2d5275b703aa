/*
 * Timeline: the server's snapshots, in version order, become the timeline every frame reads.
 */

import { rescheduleClicks } from './audio.js';
import { renderSong } from './chart.js';
import { serverNow } from './clock.js';
import { el, setText } from './dom.js';
import { onLeaderMemberId, setLeading } from './lead.js';
import { load, save, STORE } from './settings.js';
import { core, state } from './state.js';
import { showAlone } from './view.js';

export function segmentsOf(snapshot) {
  if (Array.isArray(snapshot.segments) && snapshot.segments.length) {
    return snapshot.segments;
  }
  return [{
    startServerTime: snapshot.startServerTime ?? snapshot.anchorServerTime ?? 0,
    anchorServerTime: snapshot.anchorServerTime ?? 0,
    anchorPositionMs: snapshot.anchorPositionMs ?? snapshot.positionMs ?? 0,
    anchorBeat: snapshot.anchorBeat ?? 0,
    tempoBpm: snapshot.tempoBpm ?? 120,
    isPlaying: snapshot.isPlaying === true,
    beatsPerBar: snapshot.beatsPerBar ?? 4,
    beatUnit: snapshot.beatUnit ?? 4,
  }];
}

export function onSnapshot(snapshot) {
  if (!state.joined && !state.wantJoined) {
    return;
  }
  if (!snapshot || typeof snapshot !== 'object') {
    return;
  }
  if (snapshot.sessionId && snapshot.sessionId !== state.sessionId) {
    return;
  }
  const version = typeof snapshot.version === 'number' ? snapshot.version : -Infinity;
  if (version < state.version) {
    return; // stale: a newer state is already applied
  }
  let timeline;
  try {
    timeline = new core.Timeline(segmentsOf(snapshot));
  } catch (err) {
    state.lastError = { code: 'BAD_SNAPSHOT', message: String(err) };
    return;
  }
  state.version = version;
  state.snapshot = snapshot;
  const changed = !state.timeline || timelineKey(state.timeline) !== timelineKey(timeline);
  state.timeline = timeline;
  state.lastSnapshotInfo = Object.freeze({
    version,
    receivedPerfMs: performance.now(),
    receivedServerTime: serverNow(),
    segments: timeline.segments.length,
  });
  if (changed) {
    state.timelineLog.push(Object.freeze({
      version,
      receivedPerfMs: state.lastSnapshotInfo.receivedPerfMs,
      starts: timeline.segments.map((s) => s.start),
    }));
    if (state.timelineLog.length > 32) {
      state.timelineLog.shift();
    }
    rescheduleClicks();
  }
  // clientIds never go on the wire (they re-attach a seat); find this page by its socket
  const me = (snapshot.members || []).find((m) => state.socket && m.socketId === state.socket.id);
  if (me && me.role) {
    state.role = me.role;
  }
  if (state.memberId === null && me && typeof me.memberId === 'string') {
    state.memberId = me.memberId;
  }
  if ('leaderMemberId' in snapshot) {
    onLeaderMemberId(snapshot.leaderMemberId);
  } else {
    setLeading(state.role === 'leader');
  }
  setText(el.leaderLabel, snapshot.leaderName ? 'Leader: ' + snapshot.leaderName : 'No leader');
  // A mistyped code joins (creates) an empty open session: no leader and nobody else. Say so
  // rather than show a green "In sync" over an empty stage.
  const others = (snapshot.members || []).filter(
    (m) => !(state.socket && m && m.socketId === state.socket.id));
  const alone = !snapshot.leaderMemberId && !snapshot.leaderName && others.length === 0;
  showAlone(alone, load(STORE.session, null) === state.sessionId);
  if (!alone) {
    save(STORE.session, state.sessionId); // a session with a band in it is worth offering again
  }
  const text = typeof snapshot.message === 'string' ? snapshot.message.trim() : '';
  setText(el.message, text);
  el.message.hidden = !text;
  renderSong(snapshot.song);
}

export function timelineKey(timeline) {
  return JSON.stringify(timeline.segments);
}
