// ProtocolBreakdown.js: share of traffic per protocol (UI-10) as labelled horizontal bars: the
// numbers stay readable and exact, which a pie chart does not offer on a narrow screen.

import { formatBytes, formatCount, formatPercent } from '../../services/dataFormatter.js';
import { h, replace } from '../../utils/dom.js';
import { empty } from '../Common/LoadingSpinner.js';

const COLORS = ['#00FF41', '#00BCD4', '#FFC107', '#b388ff', '#ff7b72', '#7dffa0', '#4dd0e1', '#ffe082'];

/** Normalises rows to [{name, bytes, packets, share}] sorted by bytes, descending (pure). */
export function breakdownRows(items) {
  const rows = (items || []).map((p) => ({
    name: String(p.protocolName || p.name || p.protocol || '?').toUpperCase(),
    bytes: Number(p.bytes ?? p.totalBytes ?? 0) || 0,
    packets: Number(p.packets ?? p.totalPackets ?? 0) || 0,
  }));
  const total = rows.reduce((s, r) => s + r.bytes, 0);
  rows.sort((a, b) => b.bytes - a.bytes || a.name.localeCompare(b.name));
  return rows.map((r) => ({ ...r, share: total > 0 ? (100 * r.bytes) / total : 0 }));
}

export class ProtocolBreakdown {
  constructor(el) {
    this.el = el;
  }

  render(items, windowLabel) {
    const rows = breakdownRows(items);
    if (rows.length === 0 || rows.every((r) => r.bytes === 0)) {
      replace(this.el, empty(`No traffic in the last ${windowLabel || '5 minutes'}`));
      return;
    }
    replace(this.el, h('ul', { class: 'proto-list' }, rows.map((r, i) => h('li', { class: 'proto-row', dataset: { protocol: r.name, bytes: String(r.bytes) } },
      h('span', { class: 'proto-name' }, r.name),
      h('span', { class: 'proto-bar', 'aria-hidden': 'true' },
        h('span', { class: 'proto-fill', style: `width:${Math.max(0.5, r.share).toFixed(1)}%;background:${COLORS[i % COLORS.length]}` })),
      h('span', { class: 'proto-share' }, formatPercent(r.share)),
      h('span', { class: 'proto-bytes', title: `${r.bytes} bytes, ${r.packets} packets` }, `${formatBytes(r.bytes)} · ${formatCount(r.packets)} pkts`)))));
  }
}
