/*
 * BandSync follower page: pure clock-sync and timeline math. No DOM, no sockets, no timers,
 * so the same file runs in the page, in the benchmark's pages and under node for unit tests.
 *
 * Clock sync is the algorithm of bandsync_desktop/core/clocksync.py: an exchange gives
 * t0 (local send), t1/t2 (server receive/send), t3 (local receive);
 *   rtt    = (t3 - t0) - (t2 - t1)
 *   offset = ((t1 - t0) + (t2 - t3)) / 2        server = local + offset
 * The true offset lies within rtt/2 of a sample's estimate; that bound widens with the
 * sample's age at DRIFT_BOUND (100 ppm). Each sample is an interval offset ± bound holding the
 * truth; the estimate is the middle of the intersection of the newest samples that agree, its
 * half-width the uncertainty. The offset's rate is measured as in Python: the tightest sample of
 * each SKEW_BUCKET_MS is an anchor, every pair of anchors bounds the rate, and once the
 * intersection of those bounds pins it within DRIFT_BOUND (or proves it beyond), each sample's
 * offset is carried forward at that rate. Once the anchors pin it more tightly than
 * DRIFT_BOUND, their half-width plus RATE_WANDER (5 ppm) bounds the drift instead; a sample
 * that then disagrees with the estimate is a step and clears that bound and the history.
 *
 * The timeline is the one of bandsync_desktop/core/timeline.py: a list of segments; the one
 * in force at server time t is the last whose startServerTime <= t (the first for earlier t).
 * A segment may ramp (rampToBpm, rampBeats): from its anchor the tempo moves linearly in
 * beats to rampToBpm over rampBeats beats, then holds; with T(b) = T0 + k b the time to beat
 * b is 60000/k ln(1 + k b / T0), the beat at t is T0/k (exp(k t / 60000) - 1), as in Python.
 * An anchor's instant is anchorServerTime + anchorServerTimeLo (optional, 0 when absent): the
 * low part is what rounding the instant to a double left over, so that errors do not add up
 * from change to change. It enters every beat and beat time as in Python, by the same
 * operations in the same order; position and the count-in test use anchorServerTime alone.
 */
(function (root, factory) {
  'use strict';
  const api = factory();
  if (typeof module === 'object' && module.exports) {
    module.exports = api;
  } else {
    root.BandSyncCore = api;
  }
})(typeof self !== 'undefined' ? self : this, function () {
  'use strict';

  const DRIFT_BOUND = 100e-6;
  const SKEW_BUCKET_MS = 2500;
  const SKEW_ANCHORS = 120;
  const MAX_RATE = 2000e-6; // beyond this no crystal runs: a clock step, not a rate
  const RATE_WANDER = 5e-6; // how far a crystal's rate may move within the anchors' 5 minutes
  const SNAP = 1e-6;
  const MS_PER_MINUTE = 60000;

  // -- clock sync ------------------------------------------------------------------------

  /** One exchange, all times in ms; throws when times run backwards. */
  function makeSample(t0, t1, t2, t3) {
    for (const value of [t0, t1, t2, t3]) {
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new TypeError('clock_sync times must be finite numbers');
      }
    }
    if (t3 < t0 || t2 < t1) {
      throw new RangeError("a sample's times must not run backwards");
    }
    return Object.freeze({
      t0, t1, t2, t3,
      rtt: Math.max(0, (t3 - t0) - (t2 - t1)),
      offset: ((t1 - t0) + (t2 - t3)) / 2,
    });
  }

  /** The error bound of a sample's offset at localNow, its rate known to within `drift`. */
  function boundAt(sample, localNow, drift = DRIFT_BOUND) {
    return sample.rtt / 2 + Math.max(0, localNow - sample.t3) * drift;
  }

  /** [lo, hi]: the offset's rates of change (ms per local ms) every pair of anchors allows. */
  function rateInterval(anchors) {
    let lo = -Infinity;
    let hi = Infinity;
    for (let j = 1; j < anchors.length; j += 1) {
      const later = anchors[j];
      for (let i = 0; i < j; i += 1) {
        const earlier = anchors[i];
        const span = later.t3 - earlier.t3;
        if (span <= 0) {
          continue;
        }
        const change = later.offset - earlier.offset;
        const slack = (earlier.rtt + later.rtt) / 2;
        lo = Math.max(lo, (change - slack) / span);
        hi = Math.min(hi, (change + slack) / span);
      }
    }
    return [lo, hi];
  }

  /** Keeps the last `window` samples; estimates from the intersection of their intervals. */
  class OffsetEstimator {
    constructor(window = 32) {
      this.window = window;
      this.samples = [];
      this.anchors = [];
      this.skew = 0; // the offset's measured rate (ms per local ms; 0 until it is known)
      this.drift = DRIFT_BOUND; // how far the rate may be from skew
    }

    add(sample) {
      if (sample.t3 < sample.t0 || sample.t2 < sample.t1) {
        throw new RangeError("a sample's times must not run backwards");
      }
      if (this.drift < DRIFT_BOUND && !this.agrees(sample)) {
        // within the tight bound a sample always meets the estimate, so the clock broke the
        // model (a step): nothing before it, and nothing said of the rate, applies
        this.samples = [];
        this.anchors = [];
        this.drift = DRIFT_BOUND;
      }
      this.samples.push(sample);
      if (this.samples.length > this.window) {
        this.samples.shift();
      }
      const anchors = this.anchors;
      const last = anchors[anchors.length - 1];
      if (last && Math.floor(last.t3 / SKEW_BUCKET_MS) === Math.floor(sample.t3 / SKEW_BUCKET_MS)) {
        if (sample.rtt < last.rtt) {
          anchors[anchors.length - 1] = sample;
        }
      } else {
        anchors.push(sample);
        if (anchors.length > SKEW_ANCHORS) {
          anchors.shift();
        }
      }
      let [lo, hi] = rateInterval(anchors);
      if (lo > hi || lo > MAX_RATE || hi < -MAX_RATE) {
        // a step or a new rate: the history no longer applies (a sample in flight across a
        // step may still meet the others, but only at a rate no crystal has)
        this.anchors = [sample];
        lo = -Infinity;
        hi = Infinity;
      }
      const known = (hi - lo) / 2 <= DRIFT_BOUND || lo > DRIFT_BOUND || hi < -DRIFT_BOUND;
      // not known yet: the last rate (0 at first; a step keeps it), within what anchors allow
      const skew = known ? (lo + hi) / 2 : Math.min(Math.max(this.skew, lo), hi);
      this.skew = Math.min(Math.max(skew, -MAX_RATE), MAX_RATE);
      // every pair of anchors bounds the mean rate over its span, so a rate that moves by up
      // to RATE_WANDER within their span stays within that of what they allow: once tighter
      // than DRIFT_BOUND, that bounds what carrying at skew leaves (a step clears it)
      const pinned = (hi - lo) / 2 + RATE_WANDER;
      const tight = known && this.skew === skew && pinned < DRIFT_BOUND;
      this.drift = tight ? pinned : DRIFT_BOUND;
    }

    agrees(sample) {
      const e = this.estimate(sample.t3);
      if (e === null) {
        return true;
      }
      return Math.abs(sample.offset - e.offset) <= sample.rtt / 2 + e.uncertainty;
    }

    get size() {
      return this.samples.length;
    }

    /** {offset, uncertainty, rtt, samples} or null: newest samples first, while they overlap. */
    estimate(localNow) {
      let lo = -Infinity;
      let hi = Infinity;
      let rtt = Infinity;
      let used = 0;
      for (let i = this.samples.length - 1; i >= 0; i -= 1) {
        const sample = this.samples[i];
        const bound = boundAt(sample, localNow, this.drift);
        const carried = sample.offset + this.skew * (localNow - sample.t3);
        const newLo = Math.max(lo, carried - bound);
        const newHi = Math.min(hi, carried + bound);
        if (newLo > newHi) {
          break; // this older sample disagrees with the newer ones
        }
        lo = newLo;
        hi = newHi;
        rtt = Math.min(rtt, sample.rtt);
        used += 1;
      }
      if (used === 0) {
        return null;
      }
      return { offset: (lo + hi) / 2, uncertainty: (hi - lo) / 2, rtt, samples: used };
    }

    offset(localNow) {
      const e = this.estimate(localNow);
      return e === null ? null : e.offset;
    }

    uncertainty(localNow) {
      const e = this.estimate(localNow);
      return e === null ? null : e.uncertainty;
    }

    rtt(localNow) {
      const e = this.estimate(localNow);
      return e === null ? null : e.rtt;
    }
  }

  // -- timeline --------------------------------------------------------------------------

  function mod(a, n) {
    return ((a % n) + n) % n;
  }

  /** Bar and beat (both 1-based) of an absolute beat count; beat 0 is bar 1, beat 1. */
  function barBeat(beat, beatsPerBar) {
    const whole = Math.floor(beat + SNAP);
    return {
      bar: Math.floor(whole / beatsPerBar) + 1,
      beat: mod(whole, beatsPerBar) + 1,
      fraction: Math.max(0, beat - whole),
    };
  }

  function segmentFromWire(data) {
    const number = (key) => {
      const value = data[key];
      if (typeof value !== 'number' || !Number.isFinite(value)) {
        throw new TypeError('segment field ' + key + ' must be a finite number');
      }
      return value;
    };
    const segment = {
      start: number('startServerTime'),
      anchor: number('anchorServerTime'),
      anchorLo: data.anchorServerTimeLo === undefined ? 0 : number('anchorServerTimeLo'),
      position: number('anchorPositionMs'),
      beat: number('anchorBeat'),
      tempo: number('tempoBpm'),
      playing: data.isPlaying === true,
      beatsPerBar: Math.max(1, Math.round(number('beatsPerBar'))),
      beatUnit: Math.max(1, Math.round(number('beatUnit'))),
    };
    if (segment.tempo <= 0) {
      throw new RangeError('tempoBpm must be positive');
    }
    segment.beatMs = MS_PER_MINUTE / segment.tempo;
    // A ramp (optional): only with a positive length and a different end tempo.
    const rampTo = data.rampToBpm;
    const rampBeats = data.rampBeats;
    segment.ramps = typeof rampTo === 'number' && Number.isFinite(rampTo) && rampTo > 0 &&
      typeof rampBeats === 'number' && Number.isFinite(rampBeats) && rampBeats > 0 &&
      rampTo !== segment.tempo;
    segment.endTempo = segment.ramps ? rampTo : segment.tempo;
    segment.rampBeats = segment.ramps ? rampBeats : 0;
    segment.slope = segment.ramps ? (rampTo - segment.tempo) / rampBeats : 0;
    segment.rampMs = segment.ramps
      ? MS_PER_MINUTE / segment.slope * Math.log1p((rampTo - segment.tempo) / segment.tempo)
      : 0;
    return Object.freeze(segment);
  }

  function positionOf(segment, t) {
    return segment.playing ? segment.position + Math.max(0, t - segment.anchor) : segment.position;
  }

  function beatOf(segment, t) {
    if (!segment.playing) {
      return segment.beat;
    }
    const elapsed = t - segment.anchor - segment.anchorLo;
    if (elapsed <= 0 || !segment.ramps) {
      return segment.beat + elapsed / segment.beatMs;
    }
    if (elapsed < segment.rampMs) {
      const k = segment.slope;
      return segment.beat + segment.tempo / k * Math.expm1(k * elapsed / MS_PER_MINUTE);
    }
    return segment.beat + segment.rampBeats +
      (elapsed - segment.rampMs) * segment.endTempo / MS_PER_MINUTE;
  }

  /** Server time at which a playing segment reaches `beat`. */
  function timeOfBeat(segment, beat) {
    return segment.anchor + afterAnchor(segment, beat);
  }

  /** Milliseconds from a segment's anchorServerTime to `beat`, its low part included. */
  function afterAnchor(segment, beat) {
    const done = beat - segment.beat;
    if (done <= 0 || !segment.ramps) {
      return segment.anchorLo + done * segment.beatMs;
    }
    if (done < segment.rampBeats) {
      const k = segment.slope;
      return segment.anchorLo + MS_PER_MINUTE / k * Math.log1p(k * done / segment.tempo);
    }
    return segment.anchorLo + segment.rampMs +
      (done - segment.rampBeats) * MS_PER_MINUTE / segment.endTempo;
  }

  function tempoAtBeat(segment, beat) {
    if (!segment.ramps) {
      return segment.tempo;
    }
    const done = Math.min(Math.max(0, beat - segment.beat), segment.rampBeats);
    return segment.tempo + segment.slope * done;
  }

  /** An immutable list of segments in start order (as the server sends them). */
  class Timeline {
    constructor(segments) {
      if (!Array.isArray(segments) || segments.length === 0) {
        throw new RangeError('a timeline has at least one segment');
      }
      const parsed = segments.map((s) => (Object.isFrozen(s) && 'beatMs' in s ? s : segmentFromWire(s)));
      parsed.sort((a, b) => a.start - b.start);
      this.segments = Object.freeze(parsed);
      Object.freeze(this);
    }

    get latest() {
      return this.segments[this.segments.length - 1];
    }

    segmentAt(t) {
      let found = this.segments[0];
      for (let i = 1; i < this.segments.length; i += 1) {
        if (this.segments[i].start > t) {
          break;
        }
        found = this.segments[i];
      }
      return found;
    }

    positionAt(t) {
      return positionOf(this.segmentAt(t), t);
    }

    beatAt(t) {
      return beatOf(this.segmentAt(t), t);
    }

    /** The tempo in force at `t` (inside a ramp: the ramp's tempo then). */
    tempoAt(t) {
      const segment = this.segmentAt(t);
      return segment.playing ? tempoAtBeat(segment, beatOf(segment, t)) : segment.tempo;
    }

    /** The tempo once every pending change and ramp is over. */
    get endTempo() {
      return this.latest.endTempo;
    }

    barBeatAt(t) {
      const segment = this.segmentAt(t);
      return barBeat(beatOf(segment, t), segment.beatsPerBar);
    }

    isPlayingAt(t) {
      return this.segmentAt(t).playing;
    }

    countingInAt(t) {
      const segment = this.segmentAt(t);
      return segment.playing && t < segment.anchor;
    }

    /** Whole count-in beats left before the downbeat at `t` (0 when not counting in). */
    countInBeatsLeft(t) {
      const segment = this.segmentAt(t);
      if (!segment.playing || t >= segment.anchor) {
        return 0;
      }
      return Math.ceil(((segment.anchor - t) + segment.anchorLo) / segment.beatMs - SNAP);
    }

    /**
     * Every beat that sounds in [from, to): {time, beat, inBar, downbeat, countIn, tempo}.
     * Count-in beats fall on whole beats before the anchor; song beats on whole beats of the
     * absolute count. A segment's beats end where the next segment starts.
     */
    beatsBetween(from, to) {
      const out = [];
      for (let i = 0; i < this.segments.length; i += 1) {
        const segment = this.segments[i];
        const end = i + 1 < this.segments.length ? this.segments[i + 1].start : Infinity;
        const lo = Math.max(from, segment.start);
        const hi = Math.min(to, end);
        if (!segment.playing || lo >= hi) {
          continue;
        }
        const beatMs = segment.beatMs;
        const bpb = segment.beatsPerBar;
        // Count-in: whole beats relative to the anchor, before it.
        const countEnd = Math.min(hi, segment.anchor);
        if (lo < countEnd) {
          let n = Math.ceil((lo - segment.anchor - segment.anchorLo) / beatMs - SNAP);
          for (; n < 0; n += 1) {
            const time = segment.anchor + (segment.anchorLo + n * beatMs);
            if (time >= countEnd) {
              break;
            }
            out.push({
              time, beat: segment.beat + n, inBar: mod(n, bpb) + 1,
              downbeat: mod(n, bpb) === 0, countIn: true, tempo: segment.tempo,
            });
          }
        }
        // Song: whole beats of the absolute count from the anchor on.
        const songLo = Math.max(lo, segment.anchor);
        if (songLo < hi) {
          let k = Math.ceil(beatOf(segment, songLo) - SNAP) + 0;
          for (;; k += 1) {
            const time = timeOfBeat(segment, k);
            if (time >= hi) {
              break;
            }
            if (time < songLo - SNAP) {
              continue;
            }
            out.push({
              time, beat: k, inBar: mod(k, bpb) + 1,
              downbeat: mod(k, bpb) === 0, countIn: false, tempo: tempoAtBeat(segment, k),
            });
          }
        }
      }
      return out;
    }

    /** The first bar line at or after `t` while playing (null when paused). */
    nextBarTime(t) {
      const segment = this.segmentAt(t);
      if (!segment.playing) {
        return null;
      }
      // (a window of a bar and more at the slowest tempo this segment reaches)
      const slowest = MS_PER_MINUTE / Math.min(segment.tempo, segment.endTempo);
      const beats = this.beatsBetween(t, t + (segment.beatsPerBar + 1) * slowest * 4);
      const downbeat = beats.find((b) => b.downbeat);
      return downbeat ? downbeat.time : null;
    }
  }

  return Object.freeze({
    DRIFT_BOUND, SKEW_BUCKET_MS, SKEW_ANCHORS, MAX_RATE, RATE_WANDER, MS_PER_MINUTE, makeSample, boundAt, OffsetEstimator, barBeat,
    segmentFromWire, timeOfBeat, Timeline,
  });
});
