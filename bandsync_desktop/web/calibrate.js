/*
 * BandSync follower page: the tap-along calibration's math. Pure: no DOM, no audio, no
 * timers, so the same file runs in the page and under node for the tests (as sync.js does).
 *
 * The page plays a click grid of its own (beat instants on the local clock, the latency set
 * to 0) and the player taps with what they hear. What the player hears lags the grid by the
 * output's latency, so each tap lands that much after its beat; the proposal is the median of
 * (tap - its beat) and the spread (the interquartile range of those differences) says whether
 * the run was steady enough to trust.
 *
 * Which beat a tap answers: "the nearest" cannot tell a Bluetooth lag of 300 ms at 120 BPM
 * (500 ms a beat) from a tap 200 ms early for the next beat. A lag is at least NUDGE_MIN, so
 * a tap answers the latest beat no more than EARLIEST_MS after it: every difference lies in
 * [EARLIEST_MS, EARLIEST_MS + beat length). With the page's 100 BPM grid (600 ms) that holds
 * lags up to 500 ms, the nudge's +400 and a sloppy tap's margin.
 */
(function (root, factory) {
  'use strict';
  const api = factory();
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.BandSyncCalibrate = api;
  }
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  /** Fewer answered beats than this is no measurement. */
  const MIN_TAPS = 8;
  /** The interquartile range of the differences may not exceed this (ms). */
  const MAX_SPREAD_MS = 40;
  /** A tap up to this long before a beat still answers it (ms, negative: before). */
  const EARLIEST_MS = -100;
  /** What the page's latency setting can hold (settings.js NUDGE_MIN / NUDGE_MAX). */
  const DELAY_MIN_MS = -50;
  const DELAY_MAX_MS = 400;

  /** The `q` quantile (0..1) of ascending `sorted`, linearly interpolated; null when empty. */
  function quantile(sorted, q) {
    if (!sorted.length) {
      return null;
    }
    const at = (sorted.length - 1) * Math.min(1, Math.max(0, q));
    const lo = Math.floor(at);
    const hi = Math.min(sorted.length - 1, lo + 1);
    return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
  }

  function ascending(values) {
    return values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  }

  function median(values) {
    return quantile(ascending(values), 0.5);
  }

  /**
   * Pairs each tap with the beat it answers (see the top): the latest beat at or before
   * tap - EARLIEST_MS, when the tap lies within a beat length of it. A beat answered twice
   * keeps its first tap (the second is counted as extra); taps that answer no beat (before
   * the first, long after the last) are stray.
   *
   * @param {number[]} taps tap instants (ms, the beats' clock), in any order
   * @param {number[]} beats beat instants (ms), ascending
   * @param {number} beatMs the grid's beat length
   * @returns {{differences: number[], beats: number[], extra: number, stray: number}}
   */
  function pairTaps(taps, beats, beatMs) {
    const answered = new Map();
    let extra = 0;
    let stray = 0;
    for (const tap of [...taps].filter((t) => Number.isFinite(t)).sort((a, b) => a - b)) {
      // the last beat <= tap - EARLIEST_MS (binary search: a long run stays cheap)
      let lo = 0;
      let hi = beats.length - 1;
      let found = -1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        if (beats[mid] <= tap - EARLIEST_MS) {
          found = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      const difference = found >= 0 ? tap - beats[found] : NaN;
      if (!(difference < EARLIEST_MS + beatMs)) {
        stray += 1; // NaN too: before the first beat
      } else if (answered.has(found)) {
        extra += 1;
      } else {
        answered.set(found, difference);
      }
    }
    const order = [...answered.keys()].sort((a, b) => a - b);
    return {
      differences: order.map((i) => answered.get(i)),
      beats: order.map((i) => beats[i]),
      extra,
      stray,
    };
  }

  /**
   * The verdict on one run.
   *
   * @param {number[]} taps tap instants (ms)
   * @param {number[]} beats the beats to be tapped (ms, ascending)
   * @param {number} beatMs the grid's beat length
   * @param {{minTaps?: number, maxSpreadMs?: number}} [options]
   * @returns {{ok: boolean, reason: string|null, offsetMs: number|null, spreadMs: number|null,
   *   taps: number, q25: number|null, q75: number|null, differences: number[],
   *   extra: number, stray: number}} reason: 'few' (fewer than minTaps answered beats),
   *   'spread' (IQR over maxSpreadMs), 'range' (the median outside DELAY_MIN_MS..MAX_MS).
   */
  function assess(taps, beats, beatMs, options) {
    const minTaps = (options && options.minTaps) ?? MIN_TAPS;
    const maxSpread = (options && options.maxSpreadMs) ?? MAX_SPREAD_MS;
    const paired = pairTaps(taps, beats, beatMs);
    const sorted = ascending(paired.differences);
    const q25 = quantile(sorted, 0.25);
    const q75 = quantile(sorted, 0.75);
    const middle = quantile(sorted, 0.5);
    const result = {
      ok: false,
      reason: null,
      offsetMs: middle === null ? null : Math.round(middle),
      spreadMs: q25 === null ? null : Math.round((q75 - q25) * 10) / 10,
      taps: sorted.length,
      q25,
      q75,
      differences: paired.differences,
      extra: paired.extra,
      stray: paired.stray,
    };
    if (sorted.length < minTaps) {
      result.reason = 'few';
    } else if (q75 - q25 > maxSpread) {
      result.reason = 'spread';
    } else if (result.offsetMs < DELAY_MIN_MS || result.offsetMs > DELAY_MAX_MS) {
      result.reason = 'range';
    } else {
      result.ok = true;
    }
    return result;
  }

  /** Beat instants of a grid: `count` beats `beatMs` apart from `start`. */
  function grid(start, beatMs, count) {
    const out = [];
    for (let i = 0; i < count; i += 1) {
      out.push(start + i * beatMs);
    }
    return out;
  }

  return Object.freeze({
    MIN_TAPS, MAX_SPREAD_MS, EARLIEST_MS, DELAY_MIN_MS, DELAY_MAX_MS,
    quantile, median, pairTaps, assess, grid,
  });
});
