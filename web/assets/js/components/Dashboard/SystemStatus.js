// SystemStatus.js: the dashboard's headline numbers and health lights (UI-12, UI-23).

import { formatBandwidth, formatBytes, formatInteger, formatPacketRate, formatPercent } from '../../services/dataFormatter.js';
import { h, replace } from '../../utils/dom.js';

/** Level of a metric: 'ok' | 'warn' | 'error' (thresholds of MET-05). */
export function levels(metrics, health) {
  const cpu = Number(metrics && metrics.cpuUsage) || 0;
  const drops = Number(metrics && metrics.droppedPackets) || 0;
  const iface = (metrics && metrics.interfaceStatus) || (health && health.interface_status) || 'unknown';
  return {
    cpu: cpu > 80 ? 'warn' : 'ok',
    drops: drops > 0 ? 'error' : 'ok',
    capture: iface === 'up' ? 'ok' : iface === 'down' || iface === 'error' ? 'error' : 'warn',
  };
}

function card(id, label, value, level = 'ok', sub = '') {
  return h('div', { class: `stat stat-${level}`, dataset: { stat: id } },
    h('div', { class: 'stat-label' }, label),
    h('div', { class: 'stat-value' }, value),
    sub ? h('div', { class: 'stat-sub' }, sub) : null);
}

export class SystemStatus {
  constructor(el) {
    this.el = el;
  }

  render(metrics, health) {
    if (!metrics && !health) return;
    const m = metrics || {};
    const lv = levels(metrics, health);
    const iface = m.interfaceStatus || (health && health.interface_status) || 'unknown';
    const captureActive = health ? health.capture_active : iface === 'up';
    replace(this.el,
      card('bandwidth', 'Bandwidth', formatBandwidth(m.bytesPerSecond || 0)),
      card('pps', 'Packets', formatPacketRate(m.packetsPerSecond || 0)),
      card('flows', 'Active flows', formatInteger(m.activeFlows || 0)),
      card('capture', 'Capture', captureActive ? 'ACTIVE' : 'INACTIVE', captureActive ? lv.capture : 'error', `interface ${iface}`),
      card('drops', 'Dropped packets', formatInteger(m.droppedPackets || 0), lv.drops,
        lv.drops === 'error' ? 'Packet capture degraded - check interface' : `${formatInteger(m.captureErrors || 0)} capture errors`),
      card('cpu', 'Server CPU / RSS', formatPercent(m.cpuUsage || 0), lv.cpu, formatBytes(m.memoryUsage || 0)));
  }
}
