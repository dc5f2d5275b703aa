// Runs the follower page's sync.js estimator under node for tests/web/test_clock_skew_js.py.
// Reads {runs: [{samples: [[t0, t1, t2, t3]...], queries: [[count, now]...]}]} on stdin; for
// each query, once the first `count` samples are in, prints [offset, uncertainty] (or null)
// and, per run, the rate the estimator measured.
'use strict';

const path = require('path');
const core = require(path.join(process.argv[2], 'sync.js'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const runs = JSON.parse(input).runs.map(({ samples, queries }) => {
    const estimator = new core.OffsetEstimator(32);
    let added = 0;
    const estimates = queries.map(([count, now]) => {
      while (added < count) {
        const s = samples[added];
        estimator.add(core.makeSample(s[0], s[1], s[2], s[3]));
        added += 1;
      }
      const e = estimator.estimate(now);
      return e === null ? null : [e.offset, e.uncertainty];
    });
    return { estimates, skew: estimator.skew };
  });
  process.stdout.write(JSON.stringify({ runs }));
});
