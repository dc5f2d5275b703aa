/*
 * Connection: the socket, joining and leaving, and what the server sends.
 */

import { cancelClicks } from './audio.js';
import { burst, BURST_AT_JOIN, BURST_GAP_MS, onClockSync, reportSync } from './clock.js';
import { el, setText } from './dom.js';
import { onLeaderMemberId, setLeading } from './lead.js';
import { ID_RE, NAME_MAX, save, STORE } from './settings.js';
import { core, state } from './state.js';
import { onSnapshot } from './timeline.js';
import {
  hideBanner, OFFLINE_TEXT, REFUSAL_SHOWN_MS, showBanner, showJoinForm, showStage,
  updateConnection,
} from './view.js';
import { releaseWakeLock } from './wakelock.js';

/** The console's band session (config.py `band_session_id`): what `/` offers first. */
export const DEFAULT_SESSION = 'band';

/** Leave asks for a second tap within this long (no window.confirm: it would stall audio). */
export const LEAVE_CONFIRM_MS = 3000;

export const LEAVE_LABEL = 'Leave';

export function sessionFromPath() {
  const match = /^\/s\/([^/]+)\/?$/.exec(window.location.pathname);
  if (!match) {
    return null;
  }
  try {
    const id = decodeURIComponent(match[1]);
    return ID_RE.test(id) ? id : null;
  } catch (err) {
    return null;
  }
}

export function validateName(raw) {
  const name = String(raw || '').trim();
  if (!name) {
    return [null, 'Type your name so the band knows who you are.'];
  }
  if ([...name].length > NAME_MAX) {
    return [null, 'Your name is too long (at most ' + NAME_MAX + ' characters).'];
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(name)) {
    return [null, 'Your name has characters that cannot be shown.'];
  }
  return [name, null];
}

export function joinMessage(error) {
  const code = error && error.code;
  const text = (error && error.message) || 'unknown error';
  switch (code) {
    case 'SESSION_FULL':
      return 'This session is full. Ask the leader to make room, then try again.';
    case 'INVALID_NAME':
      return 'That name cannot be used: ' + text;
    case 'INVALID_SESSION_ID':
      return 'That session id is not valid: ' + text;
    case 'RATE_LIMITED':
      return 'Too many attempts; wait a moment and try again.';
    default:
      return 'Could not join: ' + text;
  }
}

export function startJoin(sessionId, name) {
  state.sessionId = sessionId;
  state.displayName = name;
  state.wantJoined = true;
  state.removed = false;
  save(STORE.name, name);
  setText(el.sessionLabel, 'Session ' + sessionId);
  el.joinButton.disabled = true;
  if (window.location.pathname !== '/s/' + encodeURIComponent(sessionId)) {
    window.history.replaceState(null, '', '/s/' + encodeURIComponent(sessionId));
  }
  if (state.socket.connected) {
    sendJoin();
  } else {
    state.socket.connect();
  }
}

/** How long the join burst waits for a polling connection to become a websocket. */
export const UPGRADE_WAIT_MS = 300;

/**
 * Run ``then`` once the connection is a websocket (or after UPGRADE_WAIT_MS, or if the upgrade
 * fails). A reconnection opens with long-polling: a clock sample sent over it, or across the
 * switch, has a round trip of several HTTP requests, and the first sample after a reconnect
 * replaces the clock estimate (clock.js). Until then the last estimate (the same server) holds.
 */
function onWebsocket(socket, then) {
  const engine = socket.io.engine;
  if (!engine || !engine.transport || engine.transport.name === 'websocket') {
    then();
    return;
  }
  let done = false;
  const once = () => {
    if (!done) {
      done = true;
      window.clearTimeout(timer);
      engine.off('upgrade', once);
      engine.off('upgradeError', once);
      then();
    }
  };
  const timer = window.setTimeout(once, UPGRADE_WAIT_MS);
  engine.on('upgrade', once);
  engine.on('upgradeError', once);
}

export function sendJoin() {
  const socket = state.socket;
  state.version = -Infinity; // a restarted server counts versions from the start again
  if (!state.offline) {
    // A page that played on through a cut is on the beat already: no wait for a bar line.
    state.needsLock = true;
    state.lockAt = null;
  }
  socket.timeout(8000).emit(
    'join_session',
    {
      sessionId: state.sessionId,
      displayName: state.displayName,
      clientId: state.clientId,
      capabilities: ['timeline'],
    },
    (err, ack) => {
      if (err) {
        state.lastError = { code: 'TIMEOUT', message: 'no answer from the server' };
        return; // the socket reconnects and the join is sent again
      }
      if (!ack || ack.ok !== true) {
        const error = (ack && ack.error) || { code: 'UNKNOWN', message: 'refused' };
        state.lastError = error;
        state.joined = false;
        state.offline = false;
        state.wantJoined = false;
        showJoinForm(joinMessage(error));
        updateConnection();
        return;
      }
      state.joined = true;
      state.offline = false;
      state.role = ack.role || null;
      state.memberId = typeof ack.memberId === 'string' ? ack.memberId : null;
      state.clientId = ack.clientId || state.clientId;
      state.lastError = null;
      showStage();
      hideBanner();
      setLeading(state.role === 'leader');
      updateConnection();
      state.freshEstimator = state.estimator.size ? new core.OffsetEstimator() : null;
      onWebsocket(socket, () => {
        burst(BURST_AT_JOIN, BURST_GAP_MS);
        // the console shows link health as soon as the join burst is in, not 5 s later
        window.setTimeout(reportSync, BURST_AT_JOIN * BURST_GAP_MS + 250);
      });
    },
  );
}

/** Leave's first tap arms it ("Tap again"), a second one within LEAVE_CONFIRM_MS leaves. */
export function requestLeave() {
  if (performance.now() < state.leaveArmedUntil) {
    disarmLeave();
    leave();
    return;
  }
  state.leaveArmedUntil = performance.now() + LEAVE_CONFIRM_MS;
  setText(el.leave, 'Tap again');
  el.leave.setAttribute('aria-label', 'Tap again to leave the session');
  el.leave.classList.add('armed');
  window.clearTimeout(state.leaveTimer);
  state.leaveTimer = window.setTimeout(disarmLeave, LEAVE_CONFIRM_MS);
}

export function disarmLeave() {
  window.clearTimeout(state.leaveTimer);
  state.leaveTimer = null;
  state.leaveArmedUntil = 0;
  setText(el.leave, LEAVE_LABEL);
  el.leave.removeAttribute('aria-label');
  el.leave.classList.remove('armed');
}

/** From the "nobody else here" notice: leave at once and edit the session on the form. */
export function changeSession() {
  const typed = state.sessionId || '';
  leave();
  window.history.replaceState(null, '', '/');
  setText(el.sessionLabel, '');
  el.sessionInput.value = typed;
  el.sessionInput.focus();
  el.sessionInput.select();
}

export function leave() {
  disarmLeave();
  state.wantJoined = false;
  state.joined = false;
  state.offline = false;
  if (state.socket && state.socket.connected && state.sessionId) {
    state.socket.emit('leave_session', { sessionId: state.sessionId });
  }
  state.timeline = null;
  releaseWakeLock();
  cancelClicks();
  showJoinForm(null);
  updateConnection();
}

/** The first connection: straight to a websocket (nothing has failed yet). */
export const FIRST_TRANSPORTS = ['websocket', 'polling'];
/**
 * Every reconnection: long-polling first, upgraded to a websocket once in. Firefox holds back a
 * new websocket to a host whose websocket attempts just failed (its pref
 * network.websocket.delay-failed-reconnects, on by default), longer after each failure: through
 * a 3 s cut its attempts came 0.47, 0.71, 1.06 s apart, and its first websocket after the network
 * returned went out up to 1.1 s later (resume_bench.py). Plain HTTP is not held back: a poll gets
 * in at the next attempt, and the upgrade to a websocket (none failed since) follows at once.
 */
export const RECONNECT_TRANSPORTS = ['polling', 'websocket'];

/** The next attempts open with polling, and a failed poll is a failed attempt (no websocket
 * tried behind it while the network is down: each would lengthen Firefox's hold). */
function reconnectWithPolling(socket) {
  socket.io.opts.transports = RECONNECT_TRANSPORTS.slice();
  socket.io.opts.tryAllTransports = false;
}

/**
 * Try at once rather than at the next backoff tick: the network is back or the phone woke.
 * Only a socket that wants to be connected (not one the page closed: removed, left); a socket
 * not connected has nothing to close, so dropping its waiting attempt is silent.
 */
export function reconnectNow() {
  const socket = state.socket;
  if (!socket || socket.connected || !socket.active) {
    return false;
  }
  reconnectWithPolling(socket);
  socket.disconnect(); // cancels the pending attempt and its timer
  socket.connect();
  return true;
}

export function connectSocket() {
  const socket = window.io({
    transports: FIRST_TRANSPORTS.slice(),
    tryAllTransports: true,
    reconnection: true,
    // Wi-Fi back, the page is back within half a second (resume_bench.py): every 0.25-0.5 s
    // a failed attempt costs a phone nothing and a LAN server one refused connection.
    reconnectionDelay: 250,
    reconnectionDelayMax: 500,
    autoConnect: true,
  });
  state.socket = socket;
  window.addEventListener('online', reconnectNow);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') {
      reconnectNow();
    }
  });

  socket.on('connect', () => {
    state.connected = true;
    if (!state.offline) {
      hideBanner(); // offline, the notice stays until the rejoin is acknowledged
    }
    if (!state.wantJoined && el.joinError.dataset.kind === 'unreachable') {
      showJoinForm(null);
    }
    if (state.wantJoined && state.sessionId && !state.removed) {
      sendJoin();
    }
    updateConnection();
  });
  socket.on('disconnect', (reason) => {
    reconnectWithPolling(socket);
    const wasJoined = state.joined;
    state.connected = false;
    state.joined = false;
    state.pendingSync.clear();
    if (state.wantJoined && !state.removed) {
      // Keep the time of the last timeline (and its click): the band plays on without us.
      state.offline = state.offline || (wasJoined && state.timeline !== null);
      if (!state.offline) {
        cancelClicks();
      }
      showBanner(state.offline ? OFFLINE_TEXT : 'Connection lost — reconnecting…');
      if (reason === 'io server disconnect') {
        socket.connect(); // a server restart closes us on purpose: keep trying
      }
    }
    updateConnection();
  });
  socket.on('connect_error', () => {
    reconnectWithPolling(socket);
    state.connected = false;
    if (state.wantJoined) {
      showBanner(state.offline ? OFFLINE_TEXT : 'Cannot reach the server — retrying…');
    } else {
      showJoinForm('Cannot reach the server — retrying… (is the leader\'s app running?)');
      el.joinError.dataset.kind = 'unreachable';
    }
    updateConnection();
  });
  socket.on('clock_sync', onClockSync);
  socket.on('snapshot', onSnapshot);
  socket.on('heartbeat', (data) => {
    if (data && typeof data.timestamp === 'number') {
      socket.emit('heartbeat_response', { timestamp: data.timestamp });
    }
  });
  socket.on('error', (error) => {
    state.lastError = error;
    if (error && error.event && error.event !== 'join_session' && error.code !== 'RATE_LIMITED') {
      showBanner('The server refused ' + error.event + ': ' + (error.message || error.code),
        REFUSAL_SHOWN_MS);
    }
  });
  socket.on('removed', () => {
    state.removed = true;
    state.wantJoined = false;
    state.joined = false;
    state.offline = false;
    hideBanner();
    cancelClicks();
    releaseWakeLock();
    showJoinForm('The leader removed you from the session.');
    socket.disconnect();
    updateConnection();
  });
  socket.on('session_expired', () => {
    state.wantJoined = false;
    state.joined = false;
    state.offline = false;
    cancelClicks();
    showJoinForm('The session has ended (it was idle too long). Join again to start a new one.');
    updateConnection();
  });
  socket.on('server_shutdown', () => {
    showBanner('The leader\'s server stopped — waiting for it to come back…');
  });
  socket.on('role_changed', (change) => {
    // a snapshot follows with the new roles; the notice alone already moves the controls
    if (change && typeof change === 'object' && 'leaderMemberId' in change &&
        (!change.sessionId || change.sessionId === state.sessionId)) {
      onLeaderMemberId(change.leaderMemberId);
    }
  });
}

export function onJoinSubmit(event) {
  event.preventDefault();
  const sessionId = el.sessionInput.value.trim() || sessionFromPath() || '';
  if (!ID_RE.test(sessionId)) {
    showJoinForm('The session id is 1–64 letters, digits or _ . : - (see the leader\'s screen).');
    el.sessionInput.focus();
    return;
  }
  const [name, problem] = validateName(el.nameInput.value);
  if (problem) {
    showJoinForm(problem);
    el.nameInput.focus();
    return;
  }
  startJoin(sessionId, name);
}
