/*
 * View: the join form or the stage, the banner, the connection pill and the frame loop that
 * draws beat, bar:beat, count-in, state and chart from the timeline.
 */

import { closeComforts, rescheduleClicks } from './audio.js';
import { renderChart } from './chart.js';
import { serverNow } from './clock.js';
import { renderCue } from './cue.js';
import { renderForm } from './form.js';
import { closeSet, renderSetlist } from './setlist.js';
import { el, setText } from './dom.js';
import { currentTempo, setLeading } from './lead.js';
import { core, state } from './state.js';
import { wantWakeLock } from './wakelock.js';

export const OFFLINE_TEXT = 'Offline — following the last tempo; changes can\'t reach you. ' +
  'Reconnecting to the server…';

export const REFUSAL_SHOWN_MS = 8000;

/**
 * Says "nobody else is here" when this page is alone in its session. In a session this device
 * has never seen a band in, that is likely a typo; in one it has (the first to arrive, or the
 * first back after a server restart), the others are simply not here yet.
 */
export function showAlone(alone, bandSeenHere) {
  state.alone = Boolean(alone);
  if (state.alone) {
    const session = '\u2018' + state.sessionId + '\u2019';
    setText(el.aloneText, bandSeenHere
      ? 'Nobody else is in session ' + session + ' yet — waiting for the band'
      : 'Nobody else is in session ' + session + ' — check the code');
  }
  el.alone.hidden = !state.alone;
  updateConnection();
}

export function showJoinForm(errorText) {
  closeComforts(); // no settings sheet or calibration over the join form
  closeSet();
  document.body.classList.add('joining');
  state.alone = false;
  el.alone.hidden = true;
  el.wakeHint.hidden = true;
  el.join.hidden = false;
  el.stage.hidden = true;
  el.controls.hidden = true;
  setLeading(false);
  el.joinButton.disabled = false;
  el.joinError.dataset.kind = '';
  if (errorText) {
    el.joinError.textContent = errorText;
    el.joinError.hidden = false;
  } else {
    el.joinError.hidden = true;
  }
}

export function showStage() {
  document.body.classList.remove('joining');
  el.join.hidden = true;
  el.stage.hidden = false;
  el.controls.hidden = false;
  // Wake Lock exists only in secure contexts (https or localhost): a phone on the LAN's plain
  // http has none, so the page says, in words a player can act on, how to keep it on.
  el.wakeHint.hidden = 'wakeLock' in navigator;
}

/** A fixed banner; `forMs` hides it again (refusals), else it stays until hidden. */
export function showBanner(text, forMs) {
  window.clearTimeout(state.bannerTimer);
  state.bannerTimer = null;
  setText(el.banner, text);
  el.banner.hidden = false;
  if (forMs) {
    state.bannerTimer = window.setTimeout(() => {
      state.bannerTimer = null;
      if (state.offline) {
        showBanner(OFFLINE_TEXT);
      } else {
        hideBanner();
      }
    }, forMs);
  }
}

export function hideBanner() {
  window.clearTimeout(state.bannerTimer);
  state.bannerTimer = null;
  el.banner.hidden = true;
}

export function updateConnection() {
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
  } else if (state.alone) {
    text = 'Alone here';
    cls = 'pill-warn';
  } else {
    text = 'In sync';
    cls = 'pill-ok';
  }
  setText(el.conn, text);
  el.conn.className = 'pill ' + cls;
}

let dotsFor = 0;

let lastSyncInfo = 0;

export function renderDots(count, active) {
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

export function frame() {
  window.requestAnimationFrame(frame);
  const timeline = state.timeline;
  const now = serverNow();
  if (performance.now() - lastSyncInfo > 500) {
    lastSyncInfo = performance.now();
    updateConnection();
    const local = performance.now();
    const unc = state.estimator.uncertainty(local);
    const rtt = state.estimator.rtt(local);
    setText(el.syncInfo, unc === null ? 'clock: syncing' :
      'clock ±' + unc.toFixed(1) + ' ms · rtt ' + rtt.toFixed(1) + ' ms');
  }
  // the stage cue, on its bar (drawn before any early return: it holds while joining)
  renderCue(state.joined || state.offline ? state.snapshot : null, timeline, now);
  // the song's sections, the call coming and the time left, by the same bar
  const shownSnapshot = state.joined || state.offline ? state.snapshot : null;
  const songLeftMs = renderForm(shownSnapshot, timeline, now);
  // the set: what comes next, the time left in it
  renderSetlist(shownSnapshot, songLeftMs, timeline && now !== null ? timeline.barBeatAt(now).bar : null,
    now);
  // Offline, the page keeps the last timeline's time (the band plays on); it says so.
  if (!timeline || now === null || (!state.joined && !state.offline)) {
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
  setText(el.tempo, String(Math.round(timeline.tempoAt(now) * 10) / 10));
  setText(el.meter, segment.beatsPerBar + '/' + segment.beatUnit);
  wantWakeLock(segment.playing);
  renderLead(segment.playing);
  el.playState.classList.toggle('offline', state.offline);
  if (locking) {
    setText(el.playState, 'Joining at the next bar…');
    el.flash.style.opacity = '0';
    renderDots(segment.beatsPerBar, -1);
    setText(el.barbeat, '–:–');
    el.barbeat.classList.add('placeholder');
    el.barbeat.hidden = false;
    el.countin.hidden = true;
    return;
  }
  setText(el.playState, playStateText(timeline, now, segment, countIn));
  if (countIn > 0) {
    el.countin.hidden = false;
    setText(el.countin, String(countIn));
    el.barbeat.hidden = true; // the count-in takes bar:beat's place, at the same size
  } else {
    el.countin.hidden = true;
    el.barbeat.hidden = false;
    el.barbeat.classList.remove('placeholder');
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
  renderChart(countIn > 0 ? { bar: 1, beat: 1, fraction: 0 } : bb, segment.beatsPerBar);
}

export function playStateText(timeline, now, segment, countIn) {
  if (state.offline) {
    return 'Offline';
  }
  if (countIn > 0) {
    return 'Count-in';
  }
  if (segment.playing) {
    return 'Playing';
  }
  return timeline.positionAt(now) > 0 ? 'Paused' : 'Stopped';
}

export function renderLead(playing) {
  if (!state.leading) {
    return;
  }
  setText(el.leadPlay, playing ? 'Pause' : 'Play');
  const usable = state.connected && state.joined;
  for (const button of [el.leadPlay, el.leadStop, el.leadSlower, el.leadFaster]) {
    button.disabled = !usable;
  }
  el.leadTempo.disabled = !usable;
  const tempo = currentTempo();
  if (document.activeElement !== el.leadTempo && tempo !== null) {
    const shown = String(Math.round(tempo * 10) / 10);
    if (el.leadTempo.value !== shown) {
      el.leadTempo.value = shown;
    }
  }
}
