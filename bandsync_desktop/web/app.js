/*
 * BandSync follower page: socket, join, clock sync scheduling, display, click, wake lock.
 * The math lives in sync.js (BandSyncCore); this file only wires it to the DOM and audio.
 *
 * Test hook: window.bandsync (read-only), documented in docs/follower-page.md.
 */
(function () {
  'use strict';

  const core = window.BandSyncCore;
  const STORE = {
    name: 'bandsync.name',
    clientId: 'bandsync.clientId',
    nudge: 'bandsync.nudgeMs',
    click: 'bandsync.click',
    barsPerLine: 'bandsync.barsPerLine',
  };
  const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;
  const NAME_MAX = 40;
  const NUDGE_LIMIT = 100;
  const NUDGE_STEP = 5;
  const BURST_AT_JOIN = 16;
  const BURST_GAP_MS = 50;
  // After the join burst, one exchange every half second: under the estimator's 100 ppm age
  // rule a sample is worth keeping for ~10-20 s, and a busy Wi-Fi link needs ~20 samples in
  // that span for one to be fast both ways (docs/timing.md measured 4 per 10 s: not enough).
  const PERIODIC_EVERY_MS = 500;
  const PERIODIC_SAMPLES = 1;
  const PERIODIC_GAP_MS = 0;
  const REPORT_EVERY_MS = 5000;
  const SYNC_TIMEOUT_MS = 3000;
  const LOOKAHEAD_MS = 120;
  const SCHEDULE_EVERY_MS = 25;
  const CLICK_LOG = 64;
  const BARS_PER_LINE = [1, 2, 4, 8];

  // -- storage ---------------------------------------------------------------------------

  function load(key, fallback) {
    try {
      const value = window.localStorage.getItem(key);
      return value === null ? fallback : value;
    } catch (err) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, String(value));
    } catch (err) {
      /* private mode: settings last for this page only */
    }
  }

  function stableClientId() {
    let id = load(STORE.clientId, '');
    if (!ID_RE.test(id)) {
      const bytes = new Uint8Array(12);
      window.crypto.getRandomValues(bytes);
      id = 'w-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
      save(STORE.clientId, id);
    }
    return id;
  }

  function clampNudge(value) {
    const n = Math.round(Number(value));
    return Number.isFinite(n) ? Math.max(-NUDGE_LIMIT, Math.min(NUDGE_LIMIT, n)) : 0;
  }

  // -- state -----------------------------------------------------------------------------

  const state = {
    socket: null,
    connected: false,
    joined: false,
    wantJoined: false,
    removed: false,
    sessionId: null,
    displayName: null,
    clientId: stableClientId(),
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
    barsPerLine: Number(load(STORE.barsPerLine, '4')) || 4,
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
    timers: [],
  };
  if (!BARS_PER_LINE.includes(state.barsPerLine)) {
    state.barsPerLine = 4;
  }

  const $ = (id) => document.getElementById(id);
  const el = {
    flash: $('flash'), conn: $('conn'), sessionLabel: $('session-label'),
    leaderLabel: $('leader-label'), join: $('join'), joinForm: $('join-form'),
    sessionField: $('session-field'), sessionInput: $('session-input'),
    nameInput: $('name-input'), joinError: $('join-error'), joinButton: $('join-button'),
    stage: $('stage'), banner: $('banner'), playState: $('play-state'),
    songTitle: $('song-title'), countin: $('countin'), barbeat: $('barbeat'), dots: $('dots'),
    tempo: $('tempo'), meter: $('meter'), message: $('message'), chartBox: $('chart-box'),
    chart: $('chart'), controls: $('controls'), clickToggle: $('click-toggle'),
    nudgeDown: $('nudge-down'), nudgeUp: $('nudge-up'), nudgeValue: $('nudge-value'),
    chartSpeed: $('chart-speed'), leave: $('leave'), syncInfo: $('sync-info'),
  };

  function setText(node, text) {
    if (node.textContent !== text) {
      node.textContent = text;
    }
  }

  // -- clock -----------------------------------------------------------------------------

  function offsetNow() {
    return state.estimator.offset(performance.now());
  }

  function serverNow() {
    const offset = offsetNow();
    return offset === null ? null : performance.now() + offset;
  }

  function onClockSync(reply) {
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
    pending.estimator.add(sample);
    if (pending.estimator === state.freshEstimator) {
      // The first answer after a reconnect replaces the old server's clock estimate.
      state.estimator = state.freshEstimator;
      state.freshEstimator = null;
    }
    state.syncSamples += 1;
  }

  function syncOnce() {
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

  function burst(count, gapMs) {
    for (let i = 0; i < count; i += 1) {
      window.setTimeout(syncOnce, i * gapMs);
    }
  }

  function reportSync() {
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
    });
  }

  // -- join ------------------------------------------------------------------------------

  function sessionFromPath() {
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

  function showJoinForm(errorText) {
    el.join.hidden = false;
    el.stage.hidden = true;
    el.controls.hidden = true;
    el.joinButton.disabled = false;
    el.joinError.dataset.kind = '';
    if (errorText) {
      el.joinError.textContent = errorText;
      el.joinError.hidden = false;
    } else {
      el.joinError.hidden = true;
    }
  }

  function showStage() {
    el.join.hidden = true;
    el.stage.hidden = false;
    el.controls.hidden = false;
  }

  function validateName(raw) {
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

  function joinMessage(error) {
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

  function startJoin(sessionId, name) {
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

  function sendJoin() {
    const socket = state.socket;
    state.version = -Infinity; // a restarted server counts versions from the start again
    state.needsLock = true;
    state.lockAt = null;
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
          state.wantJoined = false;
          showJoinForm(joinMessage(error));
          updateConnection();
          return;
        }
        state.joined = true;
        state.role = ack.role || null;
        state.clientId = ack.clientId || state.clientId;
        state.lastError = null;
        showStage();
        hideBanner();
        updateConnection();
        state.freshEstimator = state.estimator.size ? new core.OffsetEstimator() : null;
        burst(BURST_AT_JOIN, BURST_GAP_MS);
        // the console shows link health as soon as the join burst is in, not 5 s later
        window.setTimeout(reportSync, BURST_AT_JOIN * BURST_GAP_MS + 250);
      },
    );
  }

  function leave() {
    state.wantJoined = false;
    state.joined = false;
    if (state.socket && state.socket.connected && state.sessionId) {
      state.socket.emit('leave_session', { sessionId: state.sessionId });
    }
    state.timeline = null;
    releaseWakeLock();
    cancelClicks();
    showJoinForm(null);
    updateConnection();
  }

  // -- banner and connection state -------------------------------------------------------

  function showBanner(text) {
    el.banner.textContent = text;
    el.banner.hidden = false;
  }

  function hideBanner() {
    el.banner.hidden = true;
  }

  function updateConnection() {
    let text;
    let cls;
    if (!state.connected) {
      text = state.removed ? 'Removed' : 'Offline — retrying';
      cls = 'pill-off';
    } else if (!state.joined) {
      text = 'Connected';
      cls = 'pill-warn';
    } else if (state.estimator.size === 0) {
      text = 'Syncing…';
      cls = 'pill-warn';
    } else {
      text = 'In sync';
      cls = 'pill-ok';
    }
    setText(el.conn, text);
    el.conn.className = 'pill ' + cls;
  }

  // -- snapshot --------------------------------------------------------------------------

  function segmentsOf(snapshot) {
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

  function onSnapshot(snapshot) {
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
    setText(el.leaderLabel, snapshot.leaderName ? 'Leader: ' + snapshot.leaderName : 'No leader');
    const text = typeof snapshot.message === 'string' ? snapshot.message.trim() : '';
    setText(el.message, text);
    el.message.hidden = !text;
    renderSong(snapshot.song);
  }

  function timelineKey(timeline) {
    return JSON.stringify(timeline.segments);
  }

  function renderSong(song) {
    const title = song && typeof song.title === 'string' ? song.title : '';
    setText(el.songTitle, title);
    const chart = song && typeof song.chart === 'string' ? song.chart : '';
    if (el.chart.dataset.source === chart) {
      return;
    }
    el.chart.dataset.source = chart;
    el.chart.replaceChildren();
    state.chartLines = [];
    el.chartBox.hidden = !chart;
    if (!chart) {
      return;
    }
    const padTop = document.createElement('div');
    padTop.className = 'chart-pad';
    el.chart.append(padTop);
    for (const line of chart.split('\n')) {
      const div = document.createElement('div');
      div.className = 'chart-line';
      div.textContent = line;
      el.chart.append(div);
      state.chartLines.push(div);
    }
    const padBottom = document.createElement('div');
    padBottom.className = 'chart-pad';
    el.chart.append(padBottom);
  }

  // -- audio click -----------------------------------------------------------------------

  function ensureAudio() {
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
  function readAudioMap(ctx) {
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

  function playClick(ctx, when, accent) {
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

  function cancelClicks() {
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

  function rescheduleClicks() {
    cancelClicks();
    scheduleClicks();
  }

  function scheduleClicks() {
    const ctx = state.audio;
    const timeline = state.timeline;
    const offset = offsetNow();
    if (!state.clickEnabled || !ctx || !timeline || offset === null || !state.joined) {
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

  function setClick(enabled) {
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

  function setNudge(value) {
    state.nudgeMs = clampNudge(value);
    save(STORE.nudge, state.nudgeMs);
    const sign = state.nudgeMs > 0 ? '+' : '';
    setText(el.nudgeValue, sign + state.nudgeMs + ' ms');
    rescheduleClicks();
  }

  // -- wake lock -------------------------------------------------------------------------

  function wantWakeLock(playing) {
    if (!('wakeLock' in navigator)) {
      return;
    }
    if (playing && !state.wakeLock && !state.wakeLockPending && document.visibilityState === 'visible') {
      state.wakeLockPending = true;
      navigator.wakeLock.request('screen').then((lock) => {
        state.wakeLock = lock;
        lock.addEventListener('release', () => {
          if (state.wakeLock === lock) {
            state.wakeLock = null;
          }
        });
      }).catch(() => {
        /* refused (battery saver, no gesture yet): the screen may dim, nothing else breaks */
      }).finally(() => {
        state.wakeLockPending = false;
      });
    } else if (!playing && state.wakeLock) {
      releaseWakeLock();
    }
  }

  function releaseWakeLock() {
    const lock = state.wakeLock;
    state.wakeLock = null;
    if (lock) {
      lock.release().catch(() => {});
    }
  }

  // -- display ---------------------------------------------------------------------------

  let dotsFor = 0;
  let lastSyncInfo = 0;

  function renderDots(count, active) {
    if (dotsFor !== count) {
      el.dots.replaceChildren();
      for (let i = 0; i < count; i += 1) {
        const dot = document.createElement('span');
        dot.className = i === 0 ? 'dot first' : 'dot';
        el.dots.append(dot);
      }
      dotsFor = count;
    }
    const children = el.dots.children;
    for (let i = 0; i < children.length; i += 1) {
      children[i].classList.toggle('on', i === active);
    }
  }

  function renderChart(beat, beatsPerBar) {
    if (!state.chartLines.length) {
      return;
    }
    const linePos = Math.max(0, beat / beatsPerBar / state.barsPerLine);
    const index = Math.min(state.chartLines.length - 1, Math.floor(linePos));
    const frac = index === state.chartLines.length - 1 ? 0 : linePos - index;
    for (let i = 0; i < state.chartLines.length; i += 1) {
      state.chartLines[i].classList.toggle('current', i === index);
    }
    const line = state.chartLines[index];
    const next = state.chartLines[index + 1] || line;
    const top = line.offsetTop + (next.offsetTop - line.offsetTop) * frac;
    el.chart.scrollTop = Math.max(0, top - el.chart.clientHeight / 3);
  }

  function frame() {
    window.requestAnimationFrame(frame);
    const timeline = state.timeline;
    const now = serverNow();
    if (performance.now() - lastSyncInfo > 500) {
      lastSyncInfo = performance.now();
      updateConnection();
      const local = performance.now();
      const unc = state.estimator.uncertainty(local);
      const rtt = state.estimator.rtt(local);
      // Wake Lock exists only in secure contexts (https or localhost); a phone on the LAN's
      // plain http has none, so say how to keep the screen on.
      const sleepHint = 'wakeLock' in navigator ? '' : ' · turn screen auto-lock off';
      setText(el.syncInfo, (unc === null ? 'clock: syncing' :
        'clock ±' + unc.toFixed(1) + ' ms · rtt ' + rtt.toFixed(1) + ' ms') + sleepHint);
    }
    if (!timeline || now === null || !state.joined) {
      el.flash.style.opacity = '0';
      return;
    }
    const segment = timeline.segmentAt(now);
    if (state.needsLock) {
      state.needsLock = false;
      state.lockAt = segment.playing ? timeline.nextBarTime(now + 50) : null;
      rescheduleClicks();
    }
    const locking = state.lockAt !== null && now < state.lockAt;
    if (state.lockAt !== null && !locking) {
      state.lockAt = null;
    }
    const beat = timeline.beatAt(now);
    const bb = core.barBeat(beat, segment.beatsPerBar);
    const countIn = timeline.countInBeatsLeft(now);
    setText(el.tempo, String(Math.round(segment.tempo * 10) / 10));
    setText(el.meter, segment.beatsPerBar + '/' + segment.beatUnit);
    wantWakeLock(segment.playing);
    if (locking) {
      setText(el.playState, 'Joining at the next bar…');
      el.flash.style.opacity = '0';
      renderDots(segment.beatsPerBar, -1);
      setText(el.barbeat, '–:–');
      el.countin.hidden = true;
      return;
    }
    setText(el.playState, countIn > 0 ? 'Count-in' : segment.playing ? 'Playing' : 'Stopped');
    if (countIn > 0) {
      el.countin.hidden = false;
      setText(el.countin, String(countIn));
      setText(el.barbeat, '–:–');
    } else {
      el.countin.hidden = true;
      setText(el.barbeat, bb.bar + ':' + bb.beat);
    }
    if (segment.playing) {
      const downbeat = countIn > 0 ? false : bb.beat === 1;
      el.flash.classList.toggle('downbeat', downbeat);
      el.flash.classList.toggle('countin', countIn > 0);
      const strength = downbeat ? 0.85 : 0.5;
      el.flash.style.opacity = String(Math.max(0, strength * (1 - bb.fraction * 4)));
      renderDots(segment.beatsPerBar, bb.beat - 1);
    } else {
      el.flash.style.opacity = '0';
      renderDots(segment.beatsPerBar, -1);
    }
    if (countIn === 0) {
      renderChart(beat, segment.beatsPerBar);
    }
  }

  // -- socket ----------------------------------------------------------------------------

  function connectSocket() {
    const socket = window.io({
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      reconnection: true,
      reconnectionDelay: 500,
      reconnectionDelayMax: 3000,
      autoConnect: true,
    });
    state.socket = socket;

    socket.on('connect', () => {
      state.connected = true;
      hideBanner();
      if (!state.wantJoined && el.joinError.dataset.kind === 'unreachable') {
        showJoinForm(null);
      }
      if (state.wantJoined && state.sessionId && !state.removed) {
        sendJoin();
      }
      updateConnection();
    });
    socket.on('disconnect', (reason) => {
      state.connected = false;
      state.joined = false;
      state.pendingSync.clear();
      cancelClicks();
      if (state.wantJoined && !state.removed) {
        showBanner('Connection lost — reconnecting…');
        if (reason === 'io server disconnect') {
          socket.connect(); // a server restart closes us on purpose: keep trying
        }
      }
      updateConnection();
    });
    socket.on('connect_error', () => {
      state.connected = false;
      if (state.wantJoined) {
        showBanner('Cannot reach the server — retrying…');
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
        showBanner('The server refused ' + error.event + ': ' + (error.message || error.code));
      }
    });
    socket.on('removed', () => {
      state.removed = true;
      state.wantJoined = false;
      state.joined = false;
      cancelClicks();
      releaseWakeLock();
      showJoinForm('The leader removed you from the session.');
      socket.disconnect();
      updateConnection();
    });
    socket.on('session_expired', () => {
      state.wantJoined = false;
      state.joined = false;
      cancelClicks();
      showJoinForm('The session has ended (it was idle too long). Join again to start a new one.');
      updateConnection();
    });
    socket.on('server_shutdown', () => {
      showBanner('The leader\'s server stopped — waiting for it to come back…');
    });
    socket.on('role_changed', () => {
      /* a snapshot follows with the new roles */
    });
  }

  // -- wiring ----------------------------------------------------------------------------

  function onJoinSubmit(event) {
    event.preventDefault();
    const sessionId = sessionFromPath() || el.sessionInput.value.trim();
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

  function exposeHook() {
    const hook = {};
    const getters = {
      connected: () => state.connected && state.joined,
      socketConnected: () => state.connected,
      joined: () => state.joined,
      sessionId: () => state.sessionId,
      displayName: () => state.displayName,
      clientId: () => state.clientId,
      role: () => state.role,
      version: () => (Number.isFinite(state.version) ? state.version : null),
      offsetMs: () => offsetNow(),
      offsetUncertaintyMs: () => state.estimator.uncertainty(performance.now()),
      rttMs: () => state.estimator.rtt(performance.now()),
      syncSampleCount: () => state.syncSamples,
      tempoBpm: () => (state.timeline ? state.timeline.segmentAt(serverNow() ?? 0).tempo : null),
      beatsPerBar: () => (state.timeline ? state.timeline.segmentAt(serverNow() ?? 0).beatsPerBar : null),
      isPlaying: () => (state.timeline ? state.timeline.isPlayingAt(serverNow() ?? 0) : false),
      countingIn: () => (state.timeline ? state.timeline.countingInAt(serverNow() ?? 0) : false),
      lockedIn: () => state.joined && !state.needsLock && state.lockAt === null,
      lockAt: () => state.lockAt,
      nudgeMs: () => state.nudgeMs,
      clickEnabled: () => state.clickEnabled,
      audioState: () => (state.audio ? state.audio.state : null),
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
    hook.segments = () => (state.timeline ? state.timeline.segments.map((s) => ({ ...s })) : []);
    hook.clickTimes = () => state.clickLog.map((entry) => ({ ...entry }));
    hook.timelineLog = () => state.timelineLog.map((entry) => ({ ...entry, starts: [...entry.starts] }));
    Object.freeze(hook);
    Object.defineProperty(window, 'bandsync', { value: hook, writable: false, configurable: false });
  }

  function init() {
    exposeHook();
    const pathSession = sessionFromPath();
    const params = new URLSearchParams(window.location.search);
    const queryName = params.get('name');
    el.nameInput.value = queryName ?? load(STORE.name, '');
    if (pathSession) {
      el.sessionField.hidden = true;
      setText(el.sessionLabel, 'Session ' + pathSession);
    }
    el.joinForm.addEventListener('submit', onJoinSubmit);
    el.clickToggle.addEventListener('click', () => setClick(!state.clickEnabled));
    el.nudgeDown.addEventListener('click', () => setNudge(state.nudgeMs - NUDGE_STEP));
    el.nudgeUp.addEventListener('click', () => setNudge(state.nudgeMs + NUDGE_STEP));
    el.chartSpeed.addEventListener('click', () => {
      const i = BARS_PER_LINE.indexOf(state.barsPerLine);
      state.barsPerLine = BARS_PER_LINE[(i + 1) % BARS_PER_LINE.length];
      save(STORE.barsPerLine, state.barsPerLine);
      setText(el.chartSpeed, state.barsPerLine + (state.barsPerLine === 1 ? ' bar/line' : ' bars/line'));
    });
    setText(el.chartSpeed, state.barsPerLine + (state.barsPerLine === 1 ? ' bar/line' : ' bars/line'));
    el.leave.addEventListener('click', leave);
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
})();
