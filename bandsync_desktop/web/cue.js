/*
 * Stage cues: the leader's short call ("2× CHORUS", "BREAK") shown full width over the chart
 * from the downbeat of the bar it is set for, with a bar countdown before it ("CHORUS · in 2
 * bars" … "in 1 bar"), and gone after its hold bars: every phone compares the bar its own
 * timeline is at with the cue's bar, so all switch on the same downbeat, whatever tempo or
 * meter change came first (bars run on across both). The rule is core/session.cue_phase.
 *
 * No imports and no DOM at load: the pure part (readCue, cuePhase, cueTexts, cueLength) also
 * runs under node for the tests. Text reaches the page by textContent only.
 */

export const CUE_TEXT_MAX = 40;

/** The snapshot's `cue`, checked (null when absent or malformed: nothing is shown). */
export function readCue(raw) {
  if (!raw || typeof raw !== 'object') {
    return null;
  }
  const { id, text, atBar, holdBars } = raw;
  if (typeof text !== 'string' || !text.trim() || text.length > CUE_TEXT_MAX) {
    return null;
  }
  if (!Number.isInteger(atBar) || !Number.isInteger(holdBars) || holdBars < 1) {
    return null;
  }
  return Object.freeze({ id: Number.isFinite(id) ? id : 0, text: text.trim(), atBar, holdBars });
}

/**
 * Where `cue` is when the timeline is at (1-based) `bar`: {phase, bars}; phase is 'none'
 * (no cue), 'pending' (bars to go), 'showing' (bars left to hold) or 'over'.
 */
export function cuePhase(cue, bar) {
  if (!cue || !Number.isFinite(bar)) {
    return { phase: 'none', bars: 0 };
  }
  if (bar < cue.atBar) {
    return { phase: 'pending', bars: cue.atBar - bar };
  }
  if (bar < cue.atBar + cue.holdBars) {
    return { phase: 'showing', bars: cue.atBar + cue.holdBars - bar };
  }
  return { phase: 'over', bars: 0 };
}

/** What the banner says: the cue, and before its bar the countdown. */
export function cueTexts(cue, state) {
  if (state.phase === 'pending') {
    return { text: cue.text, count: ' · in ' + state.bars + (state.bars === 1 ? ' bar' : ' bars') };
  }
  return { text: cue.text, count: '' };
}

/** A size step by length, so that 40 characters still fit two or three lines. */
export function cueLength(text) {
  const length = [...text].length;
  if (length <= 12) {
    return 'short';
  }
  return length <= 24 ? 'medium' : 'long';
}

// -- drawing --------------------------------------------------------------------------------

let nodes = null;
let shown = { phase: 'none', id: null, text: null, count: null };
let lastNow = null; // the server time of the last frame drawn

function elements() {
  if (nodes === null) {
    nodes = {
      box: document.getElementById('cue'),
      text: document.getElementById('cue-text'),
      count: document.getElementById('cue-count'),
    };
  }
  return nodes;
}

function put(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}

/**
 * Draws the snapshot's cue for server time `now` (called every frame). The box records, for
 * tests and diagnostics, its phase, the cue's id and the server time of the frame each
 * phase began (`data-since`) and of the last frame before it (`data-before`).
 */
export function renderCue(snapshot, timeline, now) {
  const { box, text, count } = elements();
  if (!box) {
    return;
  }
  const cue = timeline && now !== null && snapshot ? readCue(snapshot.cue) : null;
  const state = cue ? cuePhase(cue, timeline.barBeatAt(now).bar) : { phase: 'none', bars: 0 };
  const visible = state.phase === 'pending' || state.phase === 'showing';
  if (state.phase !== shown.phase || (cue && cue.id !== shown.id)) {
    box.dataset.before = lastNow === null ? '' : String(lastNow);
    box.dataset.since = now === null ? '' : String(now);
    box.dataset.phase = state.phase;
    box.dataset.cueId = cue ? String(cue.id) : '';
    box.classList.toggle('pending', state.phase === 'pending');
    box.classList.toggle('showing', state.phase === 'showing');
    shown = { phase: state.phase, id: cue ? cue.id : null, text: null, count: null };
  }
  lastNow = now;
  if (visible) {
    const texts = cueTexts(cue, state);
    if (texts.text !== shown.text) {
      put(text, texts.text);
      box.dataset.length = cueLength(texts.text);
      shown.text = texts.text;
    }
    if (texts.count !== shown.count) {
      put(count, texts.count);
      count.hidden = !texts.count;
      shown.count = texts.count;
    }
  }
  if (box.hidden === visible) {
    box.hidden = !visible;
  }
}
