/*
 * BandSync follower page: the entry module. Wires the controls, starts the timers and the
 * socket, and runs the frame loop. Each job lives in its own module; the math in sync.js and
 * chartmap.js (pure, also run under node by the tests).
 */

import {
  initComforts, rescheduleClicks, SCHEDULE_EVERY_MS, scheduleClicks, setClick, setNudge,
} from './audio.js';
import {
  burst, BURST_GAP_MS, PERIODIC_EVERY_MS, PERIODIC_GAP_MS, PERIODIC_SAMPLES, REPORT_EVERY_MS,
  reportSync, serverNow,
} from './clock.js';
import { setChartSize, stepChartSize, storedChartSize, watchChartBox } from './chart.js';
import {
  changeSession, connectSocket, DEFAULT_SESSION, onJoinSubmit, requestLeave, sessionFromPath,
  startJoin, validateName,
} from './connection.js';
import { el, setText } from './dom.js';
import { exposeHook } from './hook.js';
import { nudgeTempo, sendCommand, sendTempo } from './lead.js';
import { initSetlist } from './setlist.js';
import { load, NUDGE_STEP, STORE } from './settings.js';
import { state } from './state.js';
import { frame, showJoinForm } from './view.js';

function init() {
  exposeHook();
  const pathSession = sessionFromPath();
  const params = new URLSearchParams(window.location.search);
  const queryName = params.get('name');
  el.nameInput.value = queryName ?? load(STORE.name, '');
  // the session is always on the form, filled in: from the link (the QR code's /s/<id>), else
  // the last one this phone played in, else the console's band session
  el.sessionInput.value = pathSession ?? load(STORE.session, DEFAULT_SESSION);
  if (pathSession) {
    setText(el.sessionLabel, 'Session ' + pathSession);
  }
  setChartSize(storedChartSize());
  watchChartBox();
  el.chartSmaller.addEventListener('click', () => stepChartSize(-1));
  el.chartLarger.addEventListener('click', () => stepChartSize(1));
  el.aloneChange.addEventListener('click', changeSession);
  el.joinForm.addEventListener('submit', onJoinSubmit);
  el.clickToggle.addEventListener('click', () => setClick(!state.clickEnabled));
  el.nudgeDown.addEventListener('click', () => setNudge(state.nudgeMs - NUDGE_STEP));
  el.nudgeUp.addEventListener('click', () => setNudge(state.nudgeMs + NUDGE_STEP));
  el.leadPlay.addEventListener('click', () => {
    const now = serverNow();
    const playing = state.timeline && now !== null && state.timeline.isPlayingAt(now);
    sendCommand(playing ? 'pause' : 'play', {});
  });
  el.leadStop.addEventListener('click', () => sendCommand('stop', {}));
  el.leadSlower.addEventListener('click', () => nudgeTempo(-1));
  el.leadFaster.addEventListener('click', () => nudgeTempo(1));
  el.leadTempo.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      sendTempo(el.leadTempo.value);
      el.leadTempo.blur(); // give the keyboard back: the box keeps no focus after Enter
    } else if (event.key === 'Escape') {
      el.leadTempo.blur();
    }
  });
  el.leave.addEventListener('click', requestLeave);
  initComforts(); // the settings sheet, the calibration; the chosen output's latency
  initSetlist(); // the set line opens the whole set
  setNudge(state.nudgeMs);
  // The click needs a user gesture to start audio: it stays off until the toggle is pressed.
  state.clickEnabled = false;
  el.clickToggle.setAttribute('aria-pressed', 'false');
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.joined) {
      burst(6, BURST_GAP_MS);
      rescheduleClicks();
    }
  });
  state.timers.push(window.setInterval(() => {
    if (state.joined) {
      burst(PERIODIC_SAMPLES, PERIODIC_GAP_MS);
    }
  }, PERIODIC_EVERY_MS));
  state.timers.push(window.setInterval(reportSync, REPORT_EVERY_MS));
  state.timers.push(window.setInterval(scheduleClicks, SCHEDULE_EVERY_MS));
  connectSocket();
  if (pathSession && queryName !== null) {
    const [name, problem] = validateName(queryName);
    if (problem) {
      showJoinForm(problem);
    } else {
      startJoin(pathSession, name);
    }
  } else {
    showJoinForm(null);
    (pathSession ? el.nameInput : el.sessionInput).focus();
  }
  window.requestAnimationFrame(frame);
}

init();
