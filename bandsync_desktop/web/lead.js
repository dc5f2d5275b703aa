/*
 * Leading from this phone: the transport shown while its member holds the lead, sending
 * the protocol's leader commands (the server checks who may).
 */

import { el } from './dom.js';
import { state } from './state.js';
import { REFUSAL_SHOWN_MS, showBanner } from './view.js';

export const COMMAND_TIMEOUT_MS = 5000;

export const TEMPO_MIN = 20;

export const TEMPO_MAX = 280;

/** Shows the transport while this page's member holds the lead, hides it otherwise. */
export function setLeading(leading) {
  const was = state.leading;
  state.leading = Boolean(leading);
  el.lead.hidden = !state.leading;
  if (state.leading && !was) {
    const tempo = currentTempo();
    el.leadTempo.value = tempo === null ? '' : String(Math.round(tempo));
  }
}

/** A leader change named by a snapshot or a role_changed notice. */
export function onLeaderMemberId(leaderMemberId) {
  if (state.memberId === null) {
    return;
  }
  setLeading(leaderMemberId === state.memberId);
  state.role = state.leading ? 'leader' : 'follower';
}

/** The tempo the band is at or already heading to (a change waits for the next beat). */
export function currentTempo() {
  return state.timeline ? state.timeline.endTempo : null;
}

export function sendCommand(event, fields) {
  const socket = state.socket;
  if (!socket || !socket.connected || !state.joined || !state.leading) {
    return;
  }
  socket.timeout(COMMAND_TIMEOUT_MS).emit(
    event, { sessionId: state.sessionId, ...fields }, (err, ack) => {
      if (err) {
        showBanner('No answer from the server to ' + event + '.', REFUSAL_SHOWN_MS);
      } else if (ack && ack.ok === false) {
        state.lastError = ack.error || null; // the 'error' event shows the banner
      }
    },
  );
}

export function sendTempo(raw) {
  const bpm = Math.round(Number(raw) * 10) / 10;
  if (!Number.isFinite(bpm) || bpm < TEMPO_MIN || bpm > TEMPO_MAX) {
    showBanner('Tempo must be ' + TEMPO_MIN + '–' + TEMPO_MAX + ' BPM.', REFUSAL_SHOWN_MS);
    const tempo = currentTempo();
    el.leadTempo.value = tempo === null ? '' : String(Math.round(tempo));
    return;
  }
  el.leadTempo.value = String(bpm);
  sendCommand('set_tempo', { tempo: bpm });
}

export function nudgeTempo(step) {
  const tempo = currentTempo();
  if (tempo !== null) {
    sendTempo(Math.max(TEMPO_MIN, Math.min(TEMPO_MAX, Math.round(tempo) + step)));
  }
}
