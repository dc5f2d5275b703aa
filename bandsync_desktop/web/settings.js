/*
 * What a phone remembers between visits (localStorage) and the limits of what it may hold.
 */

export const STORE = {
  name: 'bandsync.name',
  clientId: 'bandsync.clientId',
  nudge: 'bandsync.nudgeMs',
  click: 'bandsync.click',
  chartSize: 'bandsync.chartSize',
  session: 'bandsync.session',
};

export const ID_RE = /^[A-Za-z0-9_.:-]{1,64}$/;

export const NAME_MAX = 40;

export const NUDGE_LIMIT = 100;

export const NUDGE_STEP = 5;

export function load(key, fallback) {
  try {
    const value = window.localStorage.getItem(key);
    return value === null ? fallback : value;
  } catch (err) {
    return fallback;
  }
}

export function save(key, value) {
  try {
    window.localStorage.setItem(key, String(value));
  } catch (err) {
    /* private mode: settings last for this page only */
  }
}

export function stableClientId() {
  let id = load(STORE.clientId, '');
  if (!ID_RE.test(id)) {
    const bytes = new Uint8Array(12);
    window.crypto.getRandomValues(bytes);
    id = 'w-' + Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
    save(STORE.clientId, id);
  }
  return id;
}

export function clampNudge(value) {
  const n = Math.round(Number(value));
  return Number.isFinite(n) ? Math.max(-NUDGE_LIMIT, Math.min(NUDGE_LIMIT, n)) : 0;
}
