// Runs the follower page's calibrate.js under node for tests/web/test_calibration.py.
// Reads {runs: [{taps, beats, beatMs, options}], quantiles: [{values, q}], grids: [...]} on
// stdin and prints what calibrate.js answers.
'use strict';

const path = require('path');
const calibrate = require(path.join(process.argv[2], 'calibrate.js'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const data = JSON.parse(input);
  // JSON has no NaN or Infinity: the test sends them as strings
  const number = (v) => (typeof v === 'string' ? Number(v) : v);
  const out = {
    constants: {
      MIN_TAPS: calibrate.MIN_TAPS,
      MAX_SPREAD_MS: calibrate.MAX_SPREAD_MS,
      EARLIEST_MS: calibrate.EARLIEST_MS,
      DELAY_MIN_MS: calibrate.DELAY_MIN_MS,
      DELAY_MAX_MS: calibrate.DELAY_MAX_MS,
    },
    runs: (data.runs || []).map((run) => calibrate.assess(
      run.taps.map(number), run.beats, run.beatMs, run.options)),
    quantiles: (data.quantiles || []).map(({ values, q }) => calibrate.quantile(values, q)),
    medians: (data.medians || []).map((values) => calibrate.median(values.map(number))),
    grids: (data.grids || []).map(({ start, beatMs, count }) => calibrate.grid(start, beatMs, count)),
  };
  process.stdout.write(JSON.stringify(out));
});
