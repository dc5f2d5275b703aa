// Runs the follower page's chartmap.js under node for tests/web/test_chart_map.py.
// Reads {charts: [string], bars: [[number]]} on stdin and prints, per chart, its map and the
// line playing at each of the given bars. With {lines: [string]} instead it prints each
// line's ChordPro reading: {directive, inline} (parseDirective, parseInline).
'use strict';

const path = require('path');
const chart = require(path.join(process.argv[2], 'chartmap.js'));

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (data) => { input += data; });
process.stdin.on('end', () => {
  const data = JSON.parse(input);
  if (data.lines) {
    process.stdout.write(JSON.stringify(data.lines.map((line) => ({
      directive: chart.parseDirective(line),
      inline: chart.parseInline(line),
    }))));
    return;
  }
  const out = data.charts.map((text, i) => {
    const map = chart.mapChart(text);
    return {
      lines: map.lines,
      timed: map.timed,
      totalBars: map.totalBars,
      at: (data.bars[i] || []).map((bar) => chart.lineAtBar(map, bar)),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
