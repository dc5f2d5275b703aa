/*
 * Wake lock: the screen stays on while the band plays (where the browser offers it).
 */

import { state } from './state.js';

export function wantWakeLock(playing) {
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

export function releaseWakeLock() {
  const lock = state.wakeLock;
  state.wakeLock = null;
  if (lock) {
    lock.release().catch(() => {});
  }
}
