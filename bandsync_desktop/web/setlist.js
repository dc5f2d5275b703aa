/*
 * The set on the phones: a line under the beat with the song coming next and the time left
 * in the set ("NEXT Ballad · 72 BPM 6/8   3/12 · 41:20 left"), and on a tap the whole set in
 * a sheet with the song on the stands marked. The set is the snapshot's `setlist`
 * (core/stageset.py); the time left is the song playing's (web/form.js, when it has a form)
 * plus every later song's stated length; songs without one are counted, not guessed.
 *
 * No imports and no DOM at load: the pure part (readSetlist, setLeft, nextText, setCount)
 * also runs under node for the tests. Text reaches the page by textContent only.
 */

export const SET_SONGS_MAX = 60;
export const TITLE_MAX = 120;
const SONG_LENGTH_MAX_MS = 4 * 3600 * 1000;

function cleanTitle(raw) {
  return typeof raw === 'string' && raw.trim() && raw.length <= TITLE_MAX ? raw.trim() : null;
}

function positive(raw, most) {
  return typeof raw === 'number' && Number.isFinite(raw) && raw > 0 && raw <= most ? raw : null;
}

/** The snapshot's `setlist`, checked (null when absent or malformed: no line is shown). */
export function readSetlist(raw) {
  if (!raw || typeof raw !== 'object' || !Array.isArray(raw.songs)) {
    return null;
  }
  if (raw.songs.length < 1 || raw.songs.length > SET_SONGS_MAX) {
    return null;
  }
  const songs = [];
  for (const song of raw.songs) {
    const title = song && typeof song === 'object' ? cleanTitle(song.title) : null;
    if (title === null) {
      return null;
    }
    const beats = Number.isInteger(song.beatsPerBar) && song.beatsPerBar > 0 ? song.beatsPerBar : null;
    const unit = Number.isInteger(song.beatUnit) && song.beatUnit > 0 ? song.beatUnit : null;
    songs.push(Object.freeze({
      title,
      tempo: positive(song.tempo, 1000),
      meter: beats !== null && unit !== null ? beats + '/' + unit : null,
      lengthMs: positive(song.lengthMs, SONG_LENGTH_MAX_MS),
    }));
  }
  const current = Number.isInteger(raw.current) && raw.current >= 0 && raw.current < songs.length
    ? raw.current : null;
  const name = typeof raw.name === 'string' && raw.name.length <= TITLE_MAX ? raw.name.trim() : '';
  return Object.freeze({ name, current, songs: Object.freeze(songs) });
}

/** The song after the one on the stands (the first while none is), or null after the last. */
export function nextSong(set) {
  const index = set.current === null ? 0 : set.current + 1;
  return index < set.songs.length ? set.songs[index] : null;
}

/** "72 BPM 6/8" (what the set says of a song; '' when it says nothing). */
export function songFacts(song) {
  const parts = [];
  if (song.tempo !== null) {
    parts.push(Math.round(song.tempo * 10) / 10 + ' BPM');
  }
  if (song.meter !== null) {
    parts.push(song.meter);
  }
  return parts.join(' ');
}

/** The line's left part: what comes next. */
export function nextText(set) {
  const next = nextSong(set);
  if (next === null) {
    return { label: 'LAST SONG', title: '', facts: '' };
  }
  return { label: 'NEXT', title: next.title, facts: songFacts(next) };
}

/**
 * The snapshot's `show.segue` (the next song straight on), checked: {title, bar,
 * atServerTime} or null. `bar` is the playing song's bar whose downbeat it starts on.
 */
export function readSegue(raw) {
  if (!raw || typeof raw !== 'object') {
    return null;
  }
  const title = cleanTitle(raw.title);
  if (title === null) {
    return null;
  }
  const bar = Number.isInteger(raw.bar) ? raw.bar : null;
  const at = typeof raw.atServerTime === 'number' && Number.isFinite(raw.atServerTime)
    ? raw.atServerTime : null;
  return Object.freeze({ title, bar, atServerTime: at });
}

/** What the line says of a segue at (1-based) `bar`, server time `now`: its countdown. */
export function segueText(segue, bar, now) {
  if (segue.atServerTime !== null && Number.isFinite(now) && now >= segue.atServerTime) {
    return { label: 'STRAIGHT ON', title: segue.title, facts: 'now' };
  }
  if (segue.bar !== null && Number.isFinite(bar) && bar < segue.bar) {
    const bars = segue.bar - bar;
    return { label: 'STRAIGHT ON', title: segue.title, facts: 'in ' + bars + (bars === 1 ? ' bar' : ' bars') };
  }
  return { label: 'STRAIGHT ON', title: segue.title, facts: 'at the end' };
}

/** "3/12": the song on the stands of how many ("–/12" while none is). */
export function setCount(set) {
  return (set.current === null ? '–' : String(set.current + 1)) + '/' + set.songs.length;
}

/**
 * Time left in the set: `songLeftMs` (the current song's, from its form; null when not
 * known, then its whole stated length) plus every later song's length. Returns {ms,
 * untimed}: `untimed` songs said nothing of their length (the current one among them when
 * neither is known), so `ms` is then a least.
 */
export function setLeft(set, songLeftMs) {
  let ms = 0;
  let untimed = 0;
  const from = set.current === null ? 0 : set.current + 1;
  if (set.current !== null) {
    const length = set.songs[set.current].lengthMs;
    if (Number.isFinite(songLeftMs)) {
      ms += Math.max(0, songLeftMs);
    } else if (length !== null) {
      ms += length;
    } else {
      untimed += 1;
    }
  }
  for (let i = from; i < set.songs.length; i += 1) {
    const length = set.songs[i].lengthMs;
    if (length === null) {
      untimed += 1;
    } else {
      ms += length;
    }
  }
  return { ms, untimed };
}

/** "41 min left", "41+ min left" (some songs untimed), "3 songs left" (none timed). */
export function leftText(left, songsLeft) {
  if (left.ms <= 0 && left.untimed > 0) {
    return songsLeft + (songsLeft === 1 ? ' song left' : ' songs left');
  }
  const minutes = Math.ceil(left.ms / 60000 - 1e-9);
  return minutes + (left.untimed > 0 ? '+' : '') + ' min left';
}

/** How many songs are still to play, the one on the stands included. */
export function songsLeft(set) {
  return set.songs.length - (set.current === null ? 0 : set.current);
}

// -- drawing --------------------------------------------------------------------------------

let nodes = null;
let drawnFrom = null; // the snapshot's setlist object the sheet was built from
let set = null;
let info = null;

function elements() {
  if (nodes === null) {
    const $ = (id) => document.getElementById(id);
    nodes = {
      line: $('set-line'), label: $('set-next-label'), title: $('set-next-title'),
      facts: $('set-next-facts'), count: $('set-count'), left: $('set-left'),
      where: document.querySelector('#set-line .set-where'),
      sheet: $('set-sheet'), name: $('set-sheet-title'), list: $('set-songs'),
      close: $('set-close'),
    };
  }
  return nodes;
}

function put(node, text) {
  if (node && node.textContent !== text) {
    node.textContent = text;
  }
}

function buildList(list, read) {
  list.replaceChildren();
  read.songs.forEach((song, index) => {
    const item = document.createElement('li');
    item.className = 'set-song';
    if (read.current !== null && index < read.current) {
      item.classList.add('done');
    }
    if (index === read.current) {
      item.classList.add('current');
      item.setAttribute('aria-current', 'true');
    }
    const number = document.createElement('span');
    number.className = 'set-song-number';
    number.textContent = String(index + 1);
    const title = document.createElement('span');
    title.className = 'set-song-title';
    title.textContent = song.title;
    const facts = document.createElement('span');
    facts.className = 'set-song-facts';
    const parts = [songFacts(song)];
    if (song.lengthMs !== null) {
      const seconds = Math.round(song.lengthMs / 1000);
      parts.push(Math.floor(seconds / 60) + ':' + String(seconds % 60).padStart(2, '0'));
    }
    facts.textContent = parts.filter(Boolean).join(' · ');
    item.append(number, title, facts);
    list.append(item);
  });
}

export function openSet() {
  const { sheet, close, line } = elements();
  if (!sheet || set === null) {
    return;
  }
  sheet.hidden = false;
  line.setAttribute('aria-expanded', 'true');
  const current = sheet.querySelector('.set-song.current');
  if (current) {
    current.scrollIntoView({ block: 'center' });
  }
  close.focus();
}

export function closeSet() {
  const { sheet, line } = elements();
  if (!sheet || sheet.hidden) {
    return;
  }
  sheet.hidden = true;
  line.setAttribute('aria-expanded', 'false');
  if (!line.hidden) {
    line.focus();
  }
}

export function initSetlist() {
  const { line, close, sheet } = elements();
  if (!line) {
    return;
  }
  line.addEventListener('click', openSet);
  close.addEventListener('click', closeSet);
  sheet.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      event.preventDefault();
      closeSet();
    }
  });
}

/** What the line shows now (the hook's `setlist()`), or null when no set is shown. */
export function setlistInfo() {
  return info === null ? null : { ...info };
}

/**
 * Draws the snapshot's set (called every frame) with the time left in the song on the
 * stands, `songLeftMs` (null when the song has no form); a segue called takes the line's
 * left part ("STRAIGHT ON Ballad in 2 bars", by the bar the timeline is at, `bar`, at
 * server time `now`), with or without a set.
 */
export function renderSetlist(snapshot, songLeftMs, bar = null, now = null) {
  const { line, label, title, facts, count, left, name, list, where } = elements();
  if (!line) {
    return;
  }
  const segue = snapshot && snapshot.show ? readSegue(snapshot.show.segue) : null;
  const raw = snapshot ? snapshot.setlist : null;
  if (raw !== drawnFrom) {
    drawnFrom = raw;
    set = readSetlist(raw);
    if (set !== null) {
      put(name, set.name || 'The set');
      buildList(list, set);
    } else {
      closeSet();
    }
  }
  line.classList.toggle('segue', segue !== null);
  if (set === null && segue === null) {
    info = null;
    line.hidden = true;
    return;
  }
  const next = segue !== null ? segueText(segue, bar, now) : nextText(set);
  put(label, next.label);
  put(title, next.title);
  put(facts, next.facts);
  line.hidden = false;
  where.hidden = set === null;
  if (set === null) {
    info = Object.freeze({ next: next.title, label: next.label, facts: next.facts, count: null,
      left: null, leftMs: null, untimed: null });
    return;
  }
  // the form's time left is the current song's only when that song is the one on the stands
  const song = snapshot.song;
  const playing = set.current !== null && song && song.title === set.songs[set.current].title;
  const remaining = setLeft(set, playing ? songLeftMs : null);
  const shownLeft = leftText(remaining, songsLeft(set));
  put(count, setCount(set));
  put(left, shownLeft);
  info = Object.freeze({
    next: next.title || null,
    label: next.label,
    facts: next.facts,
    count: setCount(set),
    left: shownLeft,
    leftMs: remaining.ms,
    untimed: remaining.untimed,
  });
}
