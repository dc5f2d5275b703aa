// Runs the follower page's sync.js under node for tests/web/test_sync_math.py.
// Reads {timelines: [{segments, times}], estimator: {samples, queries}} on stdin and prints
// what sync.js computes, so the Python test can compare it with bandsync_desktop.core.
'use strict';

const path = require('path');
const core = require(path.join(process.argv[2], 'sync.js'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const data = JSON.parse(input);
  const timelines = data.timelines.map(({ segments, times, window }) => {
    const timeline = new core.Timeline(segments);
    return {
      points: times.map((t) => {
        const bb = timeline.barBeatAt(t);
        return {
          position: timeline.positionAt(t),
          beat: timeline.beatAt(t),
          bar: bb.bar,
          inBar: bb.beat,
          playing: timeline.isPlayingAt(t),
          countingIn: timeline.countingInAt(t),
          countInLeft: timeline.countInBeatsLeft(t),
          tempo: timeline.tempoAt(t),
        };
      }),
      beats: timeline.beatsBetween(window[0], window[1]),
    };
  });
  const estimator = new core.OffsetEstimator(data.estimator.window);
  const estimates = [];
  let next = 0;
  for (const query of data.estimator.queries) {
    while (next < query.after) {
      const s = data.estimator.samples[next];
      estimator.add(core.makeSample(s[0], s[1], s[2], s[3]));
      next += 1;
    }
    estimates.push({
      offset: estimator.offset(query.now),
      uncertainty: estimator.uncertainty(query.now),
      rtt: estimator.rtt(query.now),
    });
  }
  let rejected = false;
  try {
    core.makeSample(10, 5, 4, 20);
  } catch (err) {
    rejected = err instanceof RangeError;
  }
  process.stdout.write(JSON.stringify({ timelines, estimates, rejected }));
});
