/*
 * Chart: the song's lines on screen and the current one (chartmap.js says which) kept in
 * the chart box's visible part.
 */

import { el, setText } from './dom.js';
import { chartMath, state } from './state.js';

export function renderSong(song) {
  const title = song && typeof song.title === 'string' ? song.title : '';
  setText(el.songTitle, title);
  const chart = song && typeof song.chart === 'string' ? song.chart : '';
  if (el.chart.dataset.source === chart) {
    return;
  }
  el.chart.dataset.source = chart;
  el.chart.replaceChildren();
  state.chartLines = [];
  state.chartCurrent = -1;
  state.chartMap = chart ? chartMath.mapChart(chart) : null;
  el.chartBox.hidden = !chart;
  if (!chart) {
    return;
  }
  el.chart.scrollTop = 0;
  const padTop = document.createElement('div');
  padTop.className = 'chart-pad';
  el.chart.append(padTop);
  for (const line of chart.split('\n')) {
    const div = document.createElement('div');
    div.className = 'chart-line';
    div.textContent = line;
    el.chart.append(div);
    state.chartLines.push(div);
  }
  const padBottom = document.createElement('div');
  padBottom.className = 'chart-pad';
  el.chart.append(padBottom);
}

/**
 * Highlights the chart line playing at `barBeat` (the line → bar map of chartmap.js, the
 * same on every phone) and scrolls the chart box so that line sits a third of the way down,
 * gliding towards the next one, but never outside the box's visible part.
 */
export function renderChart(barBeat, beatsPerBar) {
  const map = state.chartMap;
  if (!map || !state.chartLines.length) {
    return;
  }
  const at = chartMath.lineAtBar(map, chartMath.barPosition(barBeat, beatsPerBar));
  if (!at) {
    return;
  }
  if (at.index !== state.chartCurrent) {
    state.chartCurrent = at.index;
    for (let i = 0; i < state.chartLines.length; i += 1) {
      state.chartLines[i].classList.toggle('current', i === at.index);
      state.chartLines[i].classList.toggle(
        'current-group', i !== at.index && map.lines[i].owner === at.index);
    }
  }
  const box = el.chart;
  const line = state.chartLines[at.index];
  const nextIndex = map.timed[map.timed.indexOf(at.index) + 1];
  const next = nextIndex === undefined ? line : state.chartLines[nextIndex];
  const height = box.clientHeight;
  const lineTop = line.offsetTop;
  const lineBottom = lineTop + line.offsetHeight;
  let ideal = lineTop + (next.offsetTop - lineTop) * at.fraction - height / 3;
  // keep the line's lyrics in view too when they fit, the line itself always
  let groupBottom = lineBottom;
  for (let i = at.index + 1; i < state.chartLines.length && map.lines[i].owner === at.index; i += 1) {
    groupBottom = state.chartLines[i].offsetTop + state.chartLines[i].offsetHeight;
  }
  const low = groupBottom - lineTop <= height ? groupBottom - height : lineBottom - height;
  ideal = Math.min(lineTop, Math.max(low, ideal));
  const target = Math.max(0, Math.min(ideal, box.scrollHeight - height));
  if (Math.abs(box.scrollTop - target) >= 1) {
    box.scrollTop = target;
  }
}
