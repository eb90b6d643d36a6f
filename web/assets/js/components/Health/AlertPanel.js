// AlertPanel.js: active alerts from the WebSocket `alert` messages (D-25: bandwidth above a
// threshold, drops above zero, a helper disconnected, CPU above 80%), newest first.

import { formatClock } from '../../utils/timeFormatter.js';
import { h, replace } from '../../utils/dom.js';
import { empty } from '../Common/LoadingSpinner.js';

/** Applies one alert message to the list: active alerts replace by id, cleared ones go (pure). */
export function applyAlert(list, alert) {
  const rest = list.filter((a) => a.id !== alert.id);
  return alert.active === false ? rest : [alert, ...rest].slice(0, 50);
}

export class AlertPanel {
  constructor(els) {
    this.els = els; // the health view's panel and the dashboard's banner list
  }

  render(alerts) {
    for (const el of this.els) {
      const compact = el.dataset.compact === 'true';
      if (!alerts.length) {
        if (compact) replace(el);
        else replace(el, empty('No active alerts'));
        continue;
      }
      replace(el, h('ul', { class: 'alert-list' }, alerts.map((a) => h('li', {
        class: `alert alert-${a.severity === 'critical' ? 'critical' : 'warning'}`,
        role: compact ? 'alert' : null,
        dataset: { kind: String(a.kind || '') },
      },
      h('span', { class: 'alert-sev' }, String(a.severity || 'warning').toUpperCase()),
      h('span', { class: 'alert-msg' }, String(a.message || a.kind || 'alert')),
      h('span', { class: 'alert-time muted' }, a.since ? ` since ${formatClock(a.since)}` : '')))));
    }
  }
}
