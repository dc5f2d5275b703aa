/*
 * The page's elements, looked up once, and the one way text reaches them (textContent,
 * never innerHTML: everything shown may come from the network).
 */

export const $ = (id) => document.getElementById(id);

export const el = {
  flash: $('flash'), conn: $('conn'), sessionLabel: $('session-label'),
  leaderLabel: $('leader-label'), join: $('join'), joinForm: $('join-form'),
  sessionField: $('session-field'), sessionInput: $('session-input'),
  nameInput: $('name-input'), joinError: $('join-error'), joinButton: $('join-button'),
  stage: $('stage'), banner: $('banner'), playState: $('play-state'),
  songTitle: $('song-title'), countin: $('countin'), barbeat: $('barbeat'), dots: $('dots'),
  tempo: $('tempo'), meter: $('meter'), message: $('message'), chartBox: $('chart-box'),
  chart: $('chart'), controls: $('controls'), clickToggle: $('click-toggle'),
  nudgeDown: $('nudge-down'), nudgeUp: $('nudge-up'), nudgeValue: $('nudge-value'),
  leave: $('leave'), syncInfo: $('sync-info'), lead: $('lead'), leadPlay: $('lead-play'),
  leadStop: $('lead-stop'), leadSlower: $('lead-slower'), leadFaster: $('lead-faster'),
  leadTempo: $('lead-tempo'), chartFacts: $('chart-facts'), chartSmaller: $('chart-smaller'),
  chartLarger: $('chart-larger'), alone: $('alone'), aloneText: $('alone-text'),
  aloneChange: $('alone-change'), wakeHint: $('wake-hint'),
};

export function setText(node, text) {
  if (node.textContent !== text) {
    node.textContent = text;
  }
}
